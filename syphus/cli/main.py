"""The command line: flags -> config, library errors -> one clear line and an exit code.

    syphus --name Example.example --num_threads 64
    syphus --config configs/example.yaml --rpm 500 --tpm 200000
    syphus --name Example.example --reparse
    syphus export output/DC/v1 --images DC.json
    syphus export output/Example/v1 --prefix EX
    syphus validate DC_instructions.json --train DC_train.json --images DC.json
    syphus checksum DC.zip
    syphus view DC_instructions.json --translations DC_instructions_zh.json --images DC.json
    syphus report output/DC/v1 output/DC/v1/export/DC_instructions_zh.json
    syphus convert --scene DC --videos videos/ --out DC.json

Exit codes: the table in ``syphus.cli.exits``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from syphus import kinds
from syphus.cli.flags import (COMMANDS, CONFIG_KEYS, Parser, coldstart_parser, judge_parser, run_parser, suggest,
                              translate_parser)
from syphus.cli.progress import display
from syphus.cli.summary import dry_run_text, run_summary
from syphus.errors import UserError
from syphus.redaction import Redactor, url_password

from syphus.cli.exits import (EXIT_BUDGET, EXIT_FAILED, EXIT_FATAL, EXIT_INTERRUPTED, EXIT_OK,  # noqa: F401
                               EXIT_USER, Exit, ended, guard)

def _overrides(args: argparse.Namespace) -> dict:
    """The config keys the flags set; ``--endpoint`` is a kind or (repeatable) a pool endpoint's name."""
    out = {key: getattr(args, flag, None) for flag, key in CONFIG_KEYS.items() if flag != "endpoint"}
    chosen = getattr(args, "endpoint", None) or []
    known = kinds.names()
    picked = [x for x in chosen if x in known]
    names = [x for x in chosen if x not in known]
    if len(picked) > 1:
        raise UserError(f"--endpoint {picked[0]} and --endpoint {picked[1]}: one endpoint kind only")
    if picked:
        out["endpoint.kind"] = picked[0]
    if names:
        out["use_endpoints"] = names
    return out


def build_parser() -> argparse.ArgumentParser:
    """The run's flags (``syphus --help``)."""
    return run_parser()


class _RedactingFormatter(logging.Formatter):
    """Log lines, exception text included, through the command's one ``Redactor``."""

    def __init__(self, fmt: str, redact: Redactor):
        super().__init__(fmt)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


_URL_VARS = ("OPENAI_BASE_URL", "OPENAI_API_BASE", "AZURE_OPENAI_ENDPOINT")


def _redactor(env: Mapping[str, str]) -> Redactor:
    """The command's one redactor (logs, errors, messages): the key variables and the base URLs' passwords;
    ``_config`` adds the pool's once the config is read."""
    return Redactor([env.get(k) for k in kinds.secret_vars()] + [url_password(env.get(k)) for k in _URL_VARS])


def _config(args: argparse.Namespace, env: Mapping[str, str], secrets: Redactor):
    """The run config the flags and ``--config`` give; the pool's keys and URL passwords join ``secrets``."""
    from syphus.config import load_config
    cfg = load_config(args.config, _overrides(args))
    secrets.add(*(env.get(e.key_env) for e in cfg.endpoints if e.key_env))
    secrets.add(*(url_password(url) for url in [cfg.endpoint.base_url] + [e.base_url for e in cfg.endpoints]))
    return cfg


def _setup_logging(stream: TextIO, verbose: bool, secrets: Redactor) -> None:
    logger = logging.getLogger("syphus")
    logger.handlers.clear()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(message)s", secrets))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def _export(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.release.export import REL_CHOICES, TRAIN_CHOICES, export_run
    from syphus.engine.scenes import IMAGE_FAMILIES, SCENES

    p = Parser(prog="syphus export", description="A run folder -> MIMIC-IT release files.")
    p.add_argument("folder", help="the run folder, e.g. output/DC/v1")
    code = p.add_mutually_exclusive_group()
    code.add_argument("--scene", help="MIMIC-IT scene code for ids (default: the dataset's own, from meta.json)")
    code.add_argument("--prefix", help="for a dataset that is no MIMIC-IT scene: a code of your own, e.g. EX "
                                       "(ids EX_INS_00001, images EX_IMG_...)")
    p.add_argument("--images", help="the release image file (XX.json or XX.parquet): video frames are taken "
                                    "from the ids present in it, and queries that came without image ids get "
                                    "them by the scene's convention")
    p.add_argument("--out", help="output folder (default: <run folder>/export)")
    p.add_argument("--rel", choices=REL_CHOICES, default="same-input",
                   help="rel_ins_ids: the other pairs from the same visual input, or none")
    p.add_argument("--train", dest="train_mode", choices=TRAIN_CHOICES, default="per_image",
                   help="XX_train.json: one entry per visual input (default; how Otter's authors make theirs, "
                        "each image or video once an epoch) or one per instruction")
    p.add_argument("--author", default="syphus")
    p.add_argument("--version", dest="release_version", default="0.0.1", help="meta.version")
    p.add_argument("--no-parquet", action="store_true", help="skip the Parquet table")
    p.add_argument("--dedup", type=float, metavar="THRESHOLD",
                   help="drop near-duplicate instructions (Jaccard similarity of word shingles at or above "
                        "THRESHOLD, e.g. 0.8), keeping the first by id of each cluster; see syphus report")
    p.add_argument("--min_score", "--min-score", type=float, metavar="SCORE",
                   help="keep only pairs whose mean judge score (syphus judge, 1-5) is at least SCORE, e.g. 4; "
                        "pairs never judged are left out too")
    p.add_argument("--min_grounding", "--min-grounding", type=float, metavar="SHARE",
                   help="keep only pairs whose grounding score (the share of the answer's objects, people, "
                        "colours, counts and times its annotation supports; see syphus report) is at least SHARE")
    p.add_argument("--drop_ungrounded", "--drop-ungrounded", action="store_true",
                   help="keep only pairs with no unsupported term (the same as --min_grounding 1)")
    a = p.parse_args(argv)
    if a.min_grounding is not None and not 0 <= a.min_grounding <= 1:
        raise UserError(f"--min_grounding {a.min_grounding:g}: a share between 0 and 1 (e.g. 0.8)")
    if a.drop_ungrounded:
        if a.min_grounding is not None and a.min_grounding != 1:
            raise UserError("--drop_ungrounded is --min_grounding 1; pass one of them")
        a.min_grounding = 1.0
    if a.scene and a.scene not in SCENES + IMAGE_FAMILIES:
        raise UserError(f"--scene {a.scene}: not a MIMIC-IT scene ({', '.join(SCENES)}); for a dataset of your "
                        f"own pass --prefix {a.scene.upper()}")
    r = export_run(a.folder, scene=a.scene, out_dir=a.out, images=a.images, rel=a.rel, author=a.author,
                   train_mode=a.train_mode,
                   version=a.release_version, parquet=not a.no_parquet, prefix=a.prefix, dedup=a.dedup,
                   min_score=a.min_score, min_grounding=a.min_grounding)
    stream.write(f"exported {r.instructions_count} instructions from {r.queries} queries:\n  {r.instructions}\n"
                 f"  {r.train}\n" + (f"  {r.parquet}\n" if r.parquet else ""))
    if r.dedup is not None:
        stream.write(f"  dropped {r.dropped} near-duplicate instructions (--dedup {a.dedup}: {r.dedup['clusters']} "
                     f"clusters, the first by id of each kept; rel_ins_ids and the train file left out the dropped)\n")
    if r.judged is not None:
        j = r.judged
        stream.write(f"  dropped {j['below']} pairs scored below {j['min_score']:g} and {j['unjudged']} never judged "
                     f"(--min_score, verdicts from {j['file']}; rel_ins_ids and the train file left them out)\n")
    if r.grounding is not None:
        g = r.grounding
        stream.write(f"  dropped {g['below']} pairs with a grounding score below {g['min_grounding']:g} and "
                     f"{g['no_annotation']} whose annotation the plugin no longer gives (rel_ins_ids and the "
                     "train file left them out)\n")
    if r.derived:
        stream.write(f"  image ids of {r.derived} queries taken from {a.images} by the scene's convention\n")
    if r.no_images_hint:
        stream.write(f"  warning: {r.no_images_hint}\n")
    for note in r.notes[:20]:
        stream.write(f"  note: {note}\n")
    return EXIT_OK


def _validate(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.release.validate import validate_files

    p = Parser(prog="syphus validate", description="Check MIMIC-IT release files.")
    p.add_argument("instructions", help="XX_instructions.json")
    p.add_argument("--train", help="XX_train.json")
    p.add_argument("--images", help="XX.json or XX.parquet")
    p.add_argument("--scene", help="scene code (default: from the file name or the ids)")
    p.add_argument("--allow-no-images", action="store_true",
                   help="instructions without image_ids are a warning, not an error, in a MIMIC-IT scene")
    a = p.parse_args(argv)
    report = validate_files(a.instructions, train=a.train, images=a.images, scene=a.scene,
                            allow_no_images=a.allow_no_images)
    stream.write(report.render() + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def _checksum(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.release.checksum import PUBLISHED_MD5, check_archive

    p = Parser(prog="syphus checksum",
                                description="Verify downloaded archives against the published MD5 table.")
    p.add_argument("files", nargs="+")
    p.add_argument("--archive", choices=list(PUBLISHED_MD5), metavar="ARCHIVE",
                   help=f"which archive the file is: {', '.join(PUBLISHED_MD5)} (default: from its name)")
    a = p.parse_args(argv)
    ok = True
    for path in a.files:
        good, message = check_archive(path, a.archive)
        ok &= good
        stream.write(message + "\n")
    return EXIT_OK if ok else EXIT_FAILED


def _convert(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.cli import convert
    return convert.run(list(argv), stream)


def _view(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.cli import view
    return view.run(list(argv), stream)


def _report(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.cli import report
    return report.run(list(argv), stream)


SUBCOMMANDS = {"export": _export, "validate": _validate, "checksum": _checksum, "view": _view,
               "convert": _convert, "report": _report}


def _coldstart(argv: Sequence[str], env: Mapping[str, str], stream: TextIO, secrets: Redactor) -> int:
    from syphus.workflows.coldstart import promote, render, run_coldstart

    p = coldstart_parser()
    args = p.parse_args(argv)
    _setup_logging(stream, args.verbose, secrets)
    cfg = _config(args, env, secrets)
    seed = cfg.seed
    if args.promote:
        path = promote(cfg, args.promote, args.source, seed, args.sample, args.edit)
        stream.write(f"added {args.promote!r} as an in-context example to {path}\n")
        return EXIT_OK
    scores, report = asyncio.run(run_coldstart(cfg, env, size=args.sample, seed=seed, candidates=args.candidates,
                                               only=args.candidate,
                                               display=display(stream, not args.quiet, cfg.log_interval),
                                               judge=args.judge_endpoint or args.judge))
    stream.write(render(scores) + f"\nreport: {report}\n")
    if args.view:
        from syphus.workflows.coldstart import view_candidates
        from syphus.engine.workload import load_dataset
        index = view_candidates(report, getattr(load_dataset(cfg).dataset, "scene", None),
                                [cfg.images.path] if cfg.images.path else None)
        stream.write(f"viewer: {index} (each query once with its annotation, the candidates' pairs side by side)\n")
    return EXIT_OK


def _translate(argv: Sequence[str], env: Mapping[str, str], stream: TextIO, secrets: Redactor) -> int:
    from syphus.workflows.translate import DEFAULT_LANGS, run_translation

    p = translate_parser(",".join(DEFAULT_LANGS))
    args = p.parse_args(argv)
    _setup_logging(stream, args.verbose, secrets)
    cfg = _config(args, env, secrets)
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if args.dry_run:
        from syphus.engine.dryrun import dry_run
        from syphus.engine.workload import LoadedDataset
        from syphus.workflows.translate import for_run
        ds = for_run(cfg, args.source, langs, "each" if args.per_language else "all")
        stream.write(dry_run_text(dry_run(cfg, env, loaded=LoadedDataset(ds, Path("<translate>")))) + "\n")
        return EXIT_OK
    summary = asyncio.run(run_translation(cfg, env, args.source, langs, args.per_language, args.out,
                                          display=display(stream, not args.quiet, cfg.log_interval),
                                          retry_errors=args.retry_errors))
    for result in summary["results"]:
        stream.write(run_summary(result) + "\n")
    counts = ", ".join(f"{lang} {n}" for lang, n in summary["counts"].items())
    stream.write(f"translations written to {summary['out']}: {counts}; {summary['failures']} (id, language) "
                 f"failures in translation_failures.jsonl\n")
    last = summary["results"][-1]
    return ended(last.error, last.status, lambda text: stream.write(secrets(text) + "\n"))


def _judge(argv: Sequence[str], env: Mapping[str, str], stream: TextIO, secrets: Redactor) -> int:
    """Parse ``syphus judge`` flags, run the judge (or its dry run) and report; the exit code."""
    from syphus.workflows.judge import CRITERIA, PROMPT, judge_dataset, judge_dry_run, run_judge, verdicts

    p = judge_parser(PROMPT, CRITERIA)
    args = p.parse_args(argv)
    _setup_logging(stream, args.verbose, secrets)
    cfg = _config(args, env, secrets)
    judging = judge_dataset(args.run, args.judge_prompt, args.judge_version)
    if args.dry_run:
        stream.write(dry_run_text(judge_dry_run(cfg, env, judging)) + "\n")
        return EXIT_OK
    result = asyncio.run(run_judge(cfg, env, judging, display=display(stream, not args.quiet, cfg.log_interval),
                                   retry_errors=args.retry_errors))
    stream.write(run_summary(result) + "\n")
    judged = [v.mean for v in verdicts(judging.run, judging.folder)]
    if judged:
        low = sum(m < 3 for m in judged)
        stream.write(f"verdicts on {len(judged)} pairs in {judging.folder}: mean score "
                     f"{sum(judged) / len(judged):.2f}, {low} below 3 (syphus report {judging.run} shows them)\n")
    return ended(result.error, result.status, lambda text: stream.write(secrets(text) + "\n"))


RUNS = {"translate": _translate, "coldstart": _coldstart, "judge": _judge}  # runs on the engine, with their flags


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
         stream: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code."""

    env = os.environ if env is None else env
    argv = list(sys.argv[1:] if argv is None else argv)
    err = stream or sys.stderr
    secrets = _redactor(env)  # the command's one redactor; a run adds the pool's keys once it reads the config

    def say(text: str) -> None:
        err.write(secrets(text) + "\n")
        err.flush()

    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        near = suggest(argv[0], COMMANDS)
        say(f"error: {argv[0]!r} is not a syphus command" + (f"; did you mean 'syphus {near}'?" if near else "")
            + f" (commands: {', '.join(COMMANDS)}; see syphus --help)")
        return EXIT_USER
    if argv and argv[0] in RUNS:
        return guard(lambda: RUNS[argv[0]](argv[1:], env, err, secrets), say)
    if argv and argv[0] in SUBCOMMANDS:  # their reports go to stdout, to be piped or saved
        return guard(lambda: SUBCOMMANDS[argv[0]](argv[1:], stream or sys.stdout), say)
    if argv and argv[0] == "run":
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    _setup_logging(err, args.verbose, secrets)
    return guard(lambda: _run(args, env, err, secrets, say), say)


def _run(args: argparse.Namespace, env: Mapping[str, str], stream: TextIO, secrets: Redactor,
         say: Callable[[str], None]) -> int:
    """A run (``syphus --name ...``), or what its flags ask instead: --list, --dry-run, --status, --reparse."""
    # the engine (aiohttp, pydantic) is imported only for the commands that run it: convert and view stay light
    from syphus import plugins
    from syphus.engine.batch import batch_status
    from syphus.engine.dryrun import dry_run
    from syphus.engine.job import run_job
    from syphus.engine.reparse import reparse

    cfg = _config(args, env, secrets)
    if args.list:
        for name in plugins.available(cfg.datasets_dir):
            print(name)
        return EXIT_OK
    if args.dry_run:
        say(dry_run_text(dry_run(cfg, env)))
        return EXIT_OK
    if args.status:
        for row in asyncio.run(batch_status(cfg, env)):
            say(row)
        return EXIT_OK
    if args.reparse:
        folder, counts = reparse(cfg)
        say(f"re-parsed {folder}: {counts['valid']} with pairs, {counts['invalid']} invalid (no request sent)")
        return EXIT_OK
    result = asyncio.run(run_job(cfg, env, retry_errors=args.retry_errors,
                                 display=display(stream, not args.quiet, cfg.log_interval)))
    say(run_summary(result))
    return ended(result.error, result.status, say)


