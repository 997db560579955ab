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


_REPEATS = {"suffix": "renamed id#2, id#3 in order", "merge": "merged into one query per id (merge_items)",
            "skip": "left out (the first item of each id kept)"}


def _inputs_text(inputs: dict | None, folder: Path | None = None) -> list[str]:
    """Lines on what the check before the run left out or joined (none when it changed nothing)."""
    if not inputs:
        return []
    lines = []
    if inputs["skipped_empty"]:
        where = f"; their ids are in {folder / 'skipped_empty.txt'}" if folder is not None else ""
        n = inputs["skipped_empty"]
        lines.append(f"  {n} blank item{'s' * (n != 1)} (empty sentences) skipped{where}")
    if inputs["duplicates"]:
        lines.append(f"  {inputs['duplicates']} item(s) repeated one of {inputs['repeated_ids']} id(s): "
                     f"{_REPEATS[inputs['on_duplicate']]} (--on_duplicate {inputs['on_duplicate']})")
    return lines


def _summary(result) -> str:
    t, s = result.totals, result.stats
    lines = [f"{result.status}: {s.settled} queries ended this session (answered or failed) in "
             f"{s.requests} requests ({s.retries} retries, {s.rate_limited} answered 429), "
             f"{s.skipped} skipped as already done",
             f"run folder {result.folder}: {t.get('queries_with_pairs', 0)} queries with {t.get('pairs', 0)} pairs, "
             f"{t.get('invalid', 0)} invalid, {t.get('errors', 0)} errors; tokens {t.get('prompt_tokens', 0)} in / "
             f"{t.get('completion_tokens', 0)} out"]
    lines += _inputs_text(getattr(result, "inputs", None), result.folder)
    if t.get("invalid"):
        lines.append(f"  invalid replies are in {result.folder / 'invalid.jsonl'} (raw text kept; fix the parser "
                     "and run with --reparse)")
    if t.get("errors"):
        resend = t.get("errors_to_resend", 0)
        final = t["errors"] - resend
        if final:
            lines.append(f"  {final} errors are final for their query (in {result.folder / 'errors.jsonl'}); run "
                         "again with --retry_errors to send those queries again")
        if resend:
            lines.append(f"  {resend} errors were the endpoint's, not their query's (in "
                         f"{result.folder / 'errors.jsonl'}): they are not settled, and the same command sends them "
                         "again")
    if result.budget is not None and result.budget.price is not None and (result.budget.spent or result.budget.limit):
        cap = f" of the ${result.budget.limit:g} cap" if result.budget.limit else ""
        lines.append(f"  cost so far ${result.budget.spent:.4f}{cap}")
    if result.status == "budget":
        lines.append("  stopped before passing --max-cost; rerun with a higher --max-cost to go on (nothing is lost)")
    if result.status == "interrupted":
        lines.append("  run the same command again to resume; nothing settled will be requested again")
    return "\n".join(lines)


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
        from syphus.engine.job import load_dataset
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
        from syphus.engine.job import LoadedDataset, dry_run
        from syphus.workflows.translate import for_run
        ds = for_run(cfg, args.source, langs, "each" if args.per_language else "all")
        stream.write(_dry_run_text(dry_run(cfg, env, loaded=LoadedDataset(ds, Path("<translate>")))) + "\n")
        return EXIT_OK
    summary = asyncio.run(run_translation(cfg, env, args.source, langs, args.per_language, args.out,
                                          display=display(stream, not args.quiet, cfg.log_interval),
                                          retry_errors=args.retry_errors))
    for result in summary["results"]:
        stream.write(_summary(result) + "\n")
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
        stream.write(_dry_run_text(judge_dry_run(cfg, env, judging)) + "\n")
        return EXIT_OK
    result = asyncio.run(run_judge(cfg, env, judging, display=display(stream, not args.quiet, cfg.log_interval),
                                   retry_errors=args.retry_errors))
    stream.write(_summary(result) + "\n")
    judged = [v.mean for v in verdicts(judging.run, judging.folder)]
    if judged:
        low = sum(m < 3 for m in judged)
        stream.write(f"verdicts on {len(judged)} pairs in {judging.folder}: mean score "
                     f"{sum(judged) / len(judged):.2f}, {low} below 3 (syphus report {judging.run} shows them)\n")
    return ended(result.error, result.status, lambda text: stream.write(secrets(text) + "\n"))


RUNS = {"translate": _translate, "coldstart": _coldstart, "judge": _judge}  # runs on the engine, with their flags


def _pairs_asked_text(count: list[int] | None) -> str:
    if count is None:
        return ("  pairs asked: not read from the system message, so any number (at least one) is accepted; "
                "say how many in it (\"Write three questions\", \"four to six turns\") to have it enforced")
    low, high = count
    return f"  pairs asked: {low if low == high else f'{low} to {high}'} (read from the system message)"


def _dry_run_text(r: dict) -> str:
    lines = [f"dry run of {r['dataset']} (nothing sent): {r['queries']} queries to go "
             f"({r['already_settled']} already settled in {r['folder']}), prompts built for {r['sampled']}",
             f"  tokens per query: ~{r['prompt_tokens_per_query']} prompt, ~{r['completion_tokens_per_query']} "
             f"completion ({r['completion_basis']})",
             *([f"  images: ~{r['images_per_query']} a query, ~{r['image_tokens_per_query']} tokens (as "
                f"{r['image_tokens_as']}), included in the prompt tokens with ~{r['text_tokens_per_query']} of text"
                + (f"; {r['queries_missing_images']} sampled queries lack images in the file"
                   if r['queries_missing_images'] else "")] if "images_per_query" in r else []),
             f"  replies: {r['reply_format']}" + (f" (the schema in {r['schema_form']} form, counted in the prompt)"
                                                  if r.get("schema_form") else ""),
             *([_pairs_asked_text(r["pairs_asked"])] if "pairs_asked" in r else []),
             f"  total: ~{r['prompt_tokens']} prompt + ~{r['completion_tokens']} completion tokens "
             f"(worst case {r['worst_case_completion_tokens']} completion)"]
    lines += _inputs_text(r.get("inputs"))
    for e in r.get("endpoints") or ():  # a pool: each endpoint's share at its own price
        lines.append(f"  {e['name']}: ~{e['queries']} queries as {e['model']}, ~{e['prompt_tokens_per_query']} prompt "
                     "tokens a query" + (f" (~{e['image_tokens_per_query']} of images)" if "image_tokens_per_query" in e
                                         else "")
                     + (f", online ~${e['cost_online_usd']} (worst ${e['worst_cost_online_usd']})"
                        if e["cost_online_usd"] is not None else ", no price in the pricing table"))
    if "cost_online_usd" in r:
        where = "across the pool" if r.get("endpoints") else f"as {r['model']}"
        lines.append(f"  cost {where}: online ~${r['cost_online_usd']} (worst ${r['worst_cost_online_usd']})"
                     + (f", batch{' on ' + r['batch_endpoint'] if r.get('batch_endpoint') else ''} "
                        f"~${r['cost_batch_usd']} (worst ${r['worst_cost_batch_usd']})"
                        if "cost_batch_usd" in r else ""))
    else:
        missing = ", ".join(map(repr, r.get("unpriced") or [r["model"]]))
        lines.append(f"  cost: no price for {missing} in the pricing table (add it, or use --price_as)")
    if "wall_minutes_online" in r:
        lines.append(f"  time online at your limits: ~{r['wall_minutes_online']} minutes "
                     f"({r['requests_per_minute']} requests/minute); batches finish within their 24h window")
    elif r.get("endpoints_without_limits"):
        lines.append(f"  time: set rpm / tpm of endpoint(s) {', '.join(r['endpoints_without_limits'])} in the config "
                     "for an estimate")
    else:
        lines.append("  time: set --rpm / --tpm for an estimate")
    if r.get("endpoints_requests_per_minute"):
        lines.append("  endpoints: " + ", ".join(f"{name} {rate if rate is not None else '?'}/min"
                                                 for name, rate in r["endpoints_requests_per_minute"].items()))
    return "\n".join(lines)


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
    from syphus.engine.job import batch_status, dry_run, reparse, run_job

    cfg = _config(args, env, secrets)
    if args.list:
        for name in plugins.available(cfg.datasets_dir):
            print(name)
        return EXIT_OK
    if args.dry_run:
        say(_dry_run_text(dry_run(cfg, env)))
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
    say(_summary(result))
    return ended(result.error, result.status, say)


