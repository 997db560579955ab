"""The command line: flags -> config, library errors -> one clear line and an exit code.

    python main.py --name Example.example --num_threads 64
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from syphus import __version__
from syphus.cli.progress import display
from syphus.errors import FatalError, UserError

from syphus.cli.exits import (EXIT_BUDGET, EXIT_FAILED, EXIT_FATAL, EXIT_INTERRUPTED, EXIT_OK,  # noqa: F401
                               EXIT_USER, Exit)

# flag -> dotted config key (None: not a config key)
_FLAGS: dict[str, str] = {
    "name": "name", "num_threads": "num_threads", "slice_start": "slice_start", "slice_end": "slice_end",
    "random_sample": "random_sample", "seed": "seed", "on_duplicate": "on_duplicate",
    "dataset_version": "dataset_version",
    "prompt_path": "prompt_path", "query_inputs_path": "query_inputs_path", "output_dir": "output_dir",
    "datasets_dir": "datasets_dir", "drain_timeout": "drain_timeout", "log_interval": "log_interval",
    "endpoint": "endpoint.kind", "base_url": "endpoint.base_url", "model": "endpoint.model",
    "api_version": "endpoint.api_version", "timeout": "endpoint.timeout",
    "local_model_path": "endpoint.local_model_path",
    "temperature": "generation.temperature", "top_p": "generation.top_p", "max_tokens": "generation.max_tokens",
    "rpm": "limits.rpm", "tpm": "limits.tpm", "max_attempts": "retry.max_attempts",
    "max_retry_seconds": "retry.max_seconds", "mode": "mode", "max_cost": "cost.max_cost",
    "pricing": "cost.pricing", "price_as": "cost.price_as", "poll_interval": "batch.poll_interval",
    "max_enqueued_tokens": "batch.max_enqueued_tokens", "reply": "reply.mode", "schema_form": "reply.form",
    "images": "images.path", "max_images": "images.max_images", "image_detail": "images.detail",
    "image_max_side": "images.max_side", "allow_missing_images": "images.allow_missing",
}


_KINDS = ("auto", "openai", "azure", "compatible", "local")


def _overrides(args: argparse.Namespace) -> dict:
    """The config keys the flags set; ``--endpoint`` is a kind or (repeatable) a pool endpoint's name."""
    out = {key: getattr(args, flag) for flag, key in _FLAGS.items() if flag != "endpoint"}
    chosen = getattr(args, "endpoint", None) or []
    kinds = [x for x in chosen if x in _KINDS]
    names = [x for x in chosen if x not in _KINDS]
    if len(kinds) > 1:
        raise UserError(f"--endpoint {kinds[0]} and --endpoint {kinds[1]}: one endpoint kind only")
    if kinds:
        out["endpoint.kind"] = kinds[0]
    if names:
        out["use_endpoints"] = names
    return out


def _opt(parser: argparse.ArgumentParser, name: str, *extra: str, **kw) -> None:
    dashed = "--" + name.replace("_", "-")
    names = ["--" + name] + ([dashed] if dashed != "--" + name else []) + list(extra)
    parser.add_argument(*names, dest=name, default=None, **kw)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="syphus", description="Generate instruction-response pairs from visual annotations. "
        "Other commands: syphus coldstart | translate | judge | export | validate | checksum | convert | view | report "
        "(each has --help).",
        epilog="Keys come from the environment only: OPENAI_API_KEY, or AZURE_OPENAI_API_KEY with "
               "AZURE_OPENAI_ENDPOINT (the original OPENAI_API_TYPE/BASE/VERSION/ENGINE work too). "
               "With no key and no base URL, the bundled local model is used.")
    p.add_argument("--config", "-c", help="a YAML run config (see configs/); flags override it")
    _opt(p, "name", help="the dataset: module.Class, Class.module or a unique Class from datasets/")
    _opt(p, "num_threads", type=int, help="requests in flight at once (default 8)")
    _opt(p, "slice_start", type=int, help="first query position to run (default 0)")
    _opt(p, "slice_end", type=int, help="stop before this position when > 0 (default -1: to the end)")
    p.add_argument("--random_sample", "--random-sample", dest="random_sample", action="store_true", default=None,
                   help="shuffle the queries (with --seed) before slicing")
    _opt(p, "seed", type=int, help="seed for --random_sample (default 0)")
    _opt(p, "on_duplicate", choices=["error", "suffix", "merge", "skip"],
         help="a query id the plugin gives more than once: stop before sending anything (error, the default), "
              "make it id#2, id#3 in order (suffix), one query of all its items via the plugin's merge_items "
              "(merge), or keep the first (skip)")
    _opt(p, "dataset_version", help="run folder version label (default v1)")
    _opt(p, "prompt_path", help="override the plugin's prompt file")
    _opt(p, "query_inputs_path", "-in", help="override the plugin's annotation file")
    _opt(p, "output_dir", help="where run folders go (default output)")
    _opt(p, "datasets_dir", help="where plugins are (default datasets)")
    _opt(p, "drain_timeout", type=float, help="seconds in-flight requests get after Ctrl-C (default 60)")
    _opt(p, "log_interval", type=float, help="seconds between progress lines when not on a terminal (default 30)")
    p.add_argument("--endpoint", dest="endpoint", action="append", default=None, metavar="KIND|NAME",
                   help="the endpoint kind (auto, openai, azure, compatible, local; default auto: from the "
                        "environment), or the name of an endpoint of the config's endpoints: pool to use "
                        "(repeatable: --endpoint east --endpoint west; default: the whole pool)")
    _opt(p, "base_url", help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    _opt(p, "model", help="model name, or Azure deployment")
    _opt(p, "api_version", help="Azure api-version")
    _opt(p, "timeout", type=float, help="seconds for one request (default 120)")
    _opt(p, "local_model_path", help="a GGUF file for the local endpoint (default: the bundled SmolLM2)")
    _opt(p, "temperature", type=float)
    _opt(p, "top_p", type=float)
    _opt(p, "max_tokens", type=int, help="max tokens per reply (default 1024)")
    _opt(p, "reply", choices=["auto", "json", "text"],
         help="the reply's format: JSON in a schema the server enforces (json), text parsed after the fact "
              "(text), or auto (the default): JSON, falling back to text for the run if the endpoint rejects "
              "the schema")
    _opt(p, "schema_form", choices=["auto", "openai", "vllm", "llamacpp"],
         help="how the schema is sent: OpenAI's response_format (openai), vLLM's structured_outputs (vllm) or "
              "llama.cpp's json_object with a schema (llamacpp); default auto: llamacpp for the bundled model, "
              "openai otherwise")
    _opt(p, "images", help="send each query's images to a vision model: the release image file (XX.json or "
                           "XX.parquet, as syphus convert writes it) to look its image ids up in")
    _opt(p, "max_images", type=int, help="--images: at most N images a query, evenly spaced (default: all, up "
                                         "to images.max_per_request)")
    _opt(p, "image_detail", choices=["low", "high", "auto"], help="--images: the detail sent with each image")
    _opt(p, "image_max_side", type=int, help="--images: resize so the longer side is at most this many pixels")
    p.add_argument("--allow_missing_images", "--allow-missing-images", dest="allow_missing_images",
                   action="store_true", default=None,
                   help="--images: send a query whose images are not in the file without them (flagged in its "
                        "record) instead of recording it as an error")
    _opt(p, "rpm", type=float, help="requests per minute (default: learnt from response headers)")
    _opt(p, "tpm", type=float, help="tokens per minute (default: learnt from response headers)")
    _opt(p, "max_attempts", type=int, help="attempts per query before it is recorded as an error (default 8)")
    _opt(p, "max_retry_seconds", type=float, help="seconds of retrying per query (default 600)")
    _opt(p, "mode", choices=["online", "batch"], help="online requests, or the Batch API (half price, within 24h)")
    _opt(p, "max_cost", type=float, help="hard budget in USD: dispatch stops before spent + reserved passes it")
    _opt(p, "pricing", help="the pricing table (default configs/pricing.yaml)")
    _opt(p, "price_as", help="price the run as this model (for Azure deployment names)")
    _opt(p, "poll_interval", type=float, help="--mode batch: seconds between status checks (default 60)")
    _opt(p, "max_enqueued_tokens", type=int,
         help="--mode batch: your organisation's enqueued-token limit for the model; batches are sized and "
              "submitted to stay under it")
    p.add_argument("--dry_run", "--dry-run", action="store_true",
                   help="build the prompts and print the projected tokens, cost and time; sends nothing")
    p.add_argument("--status", action="store_true", help="--mode batch: show every batch's progress and exit")
    p.add_argument("--retry_errors", "--retry-errors", action="store_true",
                   help="run only the queries recorded in errors.jsonl")
    p.add_argument("--reparse", action="store_true",
                   help="re-parse a finished run's raw replies with the current parser; sends nothing")
    p.add_argument("--list", action="store_true", help="list the datasets in datasets/ and exit")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.add_argument("--verbose", "-v", action="store_true", help="log every retry")
    p.add_argument("--version", action="version", version=f"syphus {__version__}")
    return p


class _Redact(logging.Filter):
    def __init__(self, secrets: Sequence[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        for s in self.secrets:
            msg = msg.replace(s, "***")
        record.msg, record.args = msg, None
        return True


def _env_secrets(env: Mapping[str, str], cfg=None) -> list[str]:
    """Values never to print: the known key variables, and those a pool's ``key_env`` names."""
    names = ["OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"]
    if cfg is not None:
        names += [e.key_env for e in cfg.endpoints if e.key_env]
    return [env[k] for k in names if env.get(k)]


def _more_secrets(secrets: list[str], cfg, env: Mapping[str, str]) -> None:
    """Add the pool's keys (known once the config is read) to ``secrets`` and to the log's redaction."""
    for value in _env_secrets(env, cfg):
        if value not in secrets:
            secrets.append(value)
    for handler in logging.getLogger("syphus").handlers:
        for f in handler.filters:
            if isinstance(f, _Redact):
                f.secrets = [x for x in secrets if x]


def _config(args: argparse.Namespace, env: Mapping[str, str], secrets: list[str]):
    """The run config the flags and ``--config`` give; the pool's keys join ``secrets`` (and the log's redaction)."""
    from syphus.config import load_config
    cfg = load_config(args.config, _overrides(args))
    _more_secrets(secrets, cfg, env)
    return cfg


def _redact_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _setup_logging(stream: TextIO, verbose: bool, secrets: Sequence[str]) -> None:
    logger = logging.getLogger("syphus")
    logger.handlers.clear()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(_Redact(secrets))
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
    lines = [f"{result.status}: {s.settled} queries settled this session in "
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
        lines.append(f"  errors are in {result.folder / 'errors.jsonl'}; run again with --retry_errors to retry them")
    if result.budget is not None and result.budget.price is not None and (result.budget.spent or result.budget.limit):
        cap = f" of the ${result.budget.limit:g} cap" if result.budget.limit else ""
        lines.append(f"  cost so far ${result.budget.spent:.4f}{cap}")
    if result.status == "budget":
        lines.append("  stopped before passing --max-cost; rerun with a higher --max-cost to go on (nothing is lost)")
    if result.status == "interrupted":
        lines.append("  run the same command again to resume; nothing settled will be requested again")
    return "\n".join(lines)


def _export(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.release.export import REL_CHOICES, export_run
    from syphus.release.scenes import IMAGE_FAMILIES, SCENES

    p = argparse.ArgumentParser(prog="syphus export", description="A run folder -> MIMIC-IT release files.")
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
    p.add_argument("--author", default="syphus")
    p.add_argument("--version", dest="release_version", default="0.0.1", help="meta.version")
    p.add_argument("--no-parquet", action="store_true", help="skip the Parquet table")
    p.add_argument("--dedup", type=float, metavar="THRESHOLD",
                   help="drop near-duplicate instructions (Jaccard similarity of word shingles at or above "
                        "THRESHOLD, e.g. 0.8), keeping the first by id of each cluster; see syphus report")
    p.add_argument("--min_score", "--min-score", type=float, metavar="SCORE",
                   help="keep only pairs whose mean judge score (syphus judge, 1-5) is at least SCORE, e.g. 4; "
                        "pairs never judged are left out too")
    a = p.parse_args(argv)
    if a.scene and a.scene not in SCENES + IMAGE_FAMILIES:
        raise UserError(f"--scene {a.scene}: not a MIMIC-IT scene ({', '.join(SCENES)}); for a dataset of your "
                        f"own pass --prefix {a.scene.upper()}")
    r = export_run(a.folder, scene=a.scene, out_dir=a.out, images=a.images, rel=a.rel, author=a.author,
                   version=a.release_version, parquet=not a.no_parquet, prefix=a.prefix, dedup=a.dedup,
                   min_score=a.min_score)
    stream.write(f"exported {r.instructions_count} instructions from {r.queries} queries:\n  {r.instructions}\n"
                 f"  {r.train}\n" + (f"  {r.parquet}\n" if r.parquet else ""))
    if r.dedup is not None:
        stream.write(f"  dropped {r.dropped} near-duplicate instructions (--dedup {a.dedup}: {r.dedup['clusters']} "
                     f"clusters, the first by id of each kept; rel_ins_ids and the train file left out the dropped)\n")
    if r.judged is not None:
        j = r.judged
        stream.write(f"  dropped {j['below']} pairs scored below {j['min_score']:g} and {j['unjudged']} never judged "
                     f"(--min_score, verdicts from {j['file']}; rel_ins_ids and the train file left them out)\n")
    if r.derived:
        stream.write(f"  image ids of {r.derived} queries taken from {a.images} by the scene's convention\n")
    if r.no_images_hint:
        stream.write(f"  warning: {r.no_images_hint}\n")
    for note in r.notes[:20]:
        stream.write(f"  note: {note}\n")
    return EXIT_OK


def _validate(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.release.validate import validate_files

    p = argparse.ArgumentParser(prog="syphus validate", description="Check MIMIC-IT release files.")
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

    p = argparse.ArgumentParser(prog="syphus checksum",
                                description="Verify downloaded archives against the published MD5 table.")
    p.add_argument("files", nargs="+")
    p.add_argument("--archive", choices=list(PUBLISHED_MD5), help="which archive the file is (default: from its name)")
    a = p.parse_args(argv)
    ok = True
    for path in a.files:
        good, message = check_archive(path, a.archive)
        ok &= good
        stream.write(message + "\n")
    return EXIT_OK if ok else EXIT_FAILED


def _convert(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.cli.convert import convert_main
    return convert_main(list(argv), stream)


def _view(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.cli.view import view_main
    return view_main(list(argv), stream)


def _report(argv: Sequence[str], stream: TextIO) -> int:
    from syphus.cli.report import report_main
    return report_main(list(argv), stream)


SUBCOMMANDS = {"export": _export, "validate": _validate, "checksum": _checksum, "view": _view,
               "convert": _convert, "report": _report}


def _coldstart(argv: Sequence[str], env: Mapping[str, str], stream: TextIO, secrets: list[str]) -> int:
    from syphus.workflows.coldstart import promote, render, run_coldstart

    p = build_parser()
    p.prog = "syphus coldstart"
    p.description = ("Try the prompt's in-context examples, zero-shot, and each candidate set in "
                     "<prompt>.candidates.json on a small seeded sample, side by side; or promote a sampled "
                     "answer into the prompt file.")
    p.add_argument("--sample", type=int, default=20, help="how many queries to sample (default 20)")
    p.add_argument("--candidates", help="the candidates file (default: <prompt stem>.candidates.json beside it)")
    p.add_argument("--candidate", action="append", help="try only this candidate (repeatable)")
    p.add_argument("--promote", metavar="QUERY_ID", help="add this sampled query and its answer to the prompt file")
    p.add_argument("--from", dest="source", default="current", help="--promote: the candidate whose answer to use")
    p.add_argument("--edit", help="--promote: a file with the answer as Question:/Answer: lines, used instead")
    p.add_argument("--view", action="store_true", help="also build the HTML viewer over the candidates' answers")
    p.add_argument("--judge", action="store_true",
                   help="also judge each candidate's pairs against their annotations (prompts/judge.yaml) and rank "
                        "by the judge's mean score first")
    p.add_argument("--judge_endpoint", "--judge-endpoint", metavar="NAME",
                   help="judge with this endpoint of the config's pool (implies --judge)")
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
        stream.write(f"viewer: {index} (filter by 'language' to see one candidate)\n")
    return EXIT_OK


def _translate(argv: Sequence[str], env: Mapping[str, str], stream: TextIO, secrets: list[str]) -> int:
    from syphus.workflows.translate import DEFAULT_LANGS, run_translation

    p = build_parser()
    p.prog = "syphus translate"
    p.description = ("Translate an XX_instructions.json (or a run folder, exported first) into other languages "
                     "on the same engine: limits, retries, exactly-once outputs, resume, --dry-run, --max-cost.")
    p.add_argument("source", help="XX_instructions.json, or a run folder such as output/DC/v1")
    p.add_argument("--langs", default=",".join(DEFAULT_LANGS), help="comma-separated ISO codes (default: %(default)s)")
    p.add_argument("--per_language", "--per-language", action="store_true",
                   help="one request per language instead of all languages in one request")
    p.add_argument("--out", help="where the per-language files go (default: <run folder>/export)")
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
    if last.error is not None:
        stream.write(f"stopped: {_redact_text(str(last.error), secrets)}\n")
        return EXIT_USER if isinstance(last.error, UserError) else EXIT_FATAL
    return Exit.for_status(last.status)


def _judge(argv: Sequence[str], env: Mapping[str, str], stream: TextIO, secrets: list[str]) -> int:
    """Parse ``syphus judge`` flags, run the judge (or its dry run) and report; the exit code."""
    from syphus.workflows.judge import CRITERIA, PROMPT, judge_dataset, judge_dry_run, run_judge, verdicts

    p = build_parser()
    p.prog = "syphus judge"
    p.description = ("Score every pair of a run folder against the annotation it was made from, with a judge "
                     f"model and the rubric of {PROMPT} ({', '.join(CRITERIA)}: 1-5 each, and a reason). "
                     "A run on the same engine: endpoints, limits, retries, --max-cost, --dry-run, --mode batch "
                     "and resume all apply; the verdicts go to <run>/judge/<version>/, beside the pairs.")
    p.add_argument("run", help="the run folder to judge, e.g. output/DC/v1")
    p.add_argument("--judge_prompt", "--judge-prompt", default=None, help=f"the rubric (default: {PROMPT})")
    p.add_argument("--judge_version", "--judge-version", default="v1",
                   help="the judge run's folder name under <run>/judge/ (one per judge model; default: v1)")
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
    if result.error is not None:
        stream.write(f"stopped: {_redact_text(str(result.error), secrets)}\n")
        return EXIT_USER if isinstance(result.error, UserError) else EXIT_FATAL
    return Exit.for_status(result.status)


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
             f"  total: ~{r['prompt_tokens']} prompt + ~{r['completion_tokens']} completion tokens "
             f"(worst case {r['worst_case_completion_tokens']} completion)"]
    lines += _inputs_text(r.get("inputs"))
    if "cost_online_usd" in r:
        lines.append(f"  cost as {r['model']}: online ~${r['cost_online_usd']} (worst ${r['worst_cost_online_usd']}), "
                     f"batch ~${r['cost_batch_usd']} (worst ${r['worst_cost_batch_usd']})")
    else:
        lines.append(f"  cost: no price for {r['model']!r} in the pricing table (add it, or use --price_as)")
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
    if argv and argv[0] in ("translate", "coldstart", "judge"):
        command = {"translate": _translate, "coldstart": _coldstart, "judge": _judge}[argv[0]]
        secrets = _env_secrets(env)  # the command adds the pool's keys once it reads the config
        try:
            return command(argv[1:], env, stream or sys.stderr, secrets)
        except UserError as e:
            (stream or sys.stderr).write(f"error: {_redact_text(str(e), secrets)}\n")
            return EXIT_USER
        except FatalError as e:
            (stream or sys.stderr).write(f"stopped: {_redact_text(str(e), secrets)}\n")
            return EXIT_FATAL
    if argv and argv[0] in SUBCOMMANDS:  # their reports go to stdout, to be piped or saved
        out = stream or sys.stdout
        try:
            return SUBCOMMANDS[argv[0]](argv[1:], out)
        except UserError as e:
            (stream or sys.stderr).write(f"error: {e}\n")
            return EXIT_USER
    # the engine (aiohttp, pydantic) is imported only for the commands that run it: convert and view stay light
    from syphus import plugins
    from syphus.engine.job import batch_status, dry_run, reparse, run_job

    stream = stream or sys.stderr
    if argv and argv[0] == "run":
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    secrets = _env_secrets(env)
    _setup_logging(stream, args.verbose, secrets)

    def say(text: str) -> None:
        stream.write(_redact_text(text, secrets) + "\n")
        stream.flush()

    try:
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
    except UserError as e:
        say(f"error: {e}")
        return EXIT_USER
    except FatalError as e:
        say(f"stopped: {e}")
        return EXIT_FATAL
    say(_summary(result))
    if isinstance(result.error, UserError):
        say(f"error: {result.error}")
        return EXIT_USER
    if result.error is not None:
        say(f"stopped: {result.error}")
        return EXIT_FATAL
    return Exit.for_status(result.status)


