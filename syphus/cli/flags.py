"""Flags: the run's options in named groups, each subcommand with only the groups it uses, and a
parser that answers a mistyped flag or command with "did you mean".

    >>> p = run_parser()
    >>> p.parse_args(["--name", "Example.example", "--num_threads", "4"]).num_threads
    4
    >>> suggest("--dryrun", ["--dry-run", "--dry_run", "--status"])
    '--dry-run'
    >>> suggest("exprot", COMMANDS)
    'export'

Abbreviations are refused (``allow_abbrev=False``): ``--num_thread 4`` is an error that names
``--num_threads``, not a silent match. Every group is one function adding its flags, so the run,
``coldstart``, ``translate`` and ``judge`` share one definition of each flag; the three subcommands
describe their own flags and list the engine's by name (``_engine``), so their ``--help`` fits a screen.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable, Iterable, Sequence

from syphus import __version__, kinds, schemaform

COMMANDS = ("run", "coldstart", "translate", "judge", "export", "validate", "checksum", "convert", "view", "report")

# flag -> dotted config key; a subcommand without a flag leaves its key unset
CONFIG_KEYS: dict[str, str] = {
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
    "repairs": "reply.repairs",
    "images": "images.path", "max_images": "images.max_images", "image_detail": "images.detail",
    "image_max_side": "images.max_side", "allow_missing_images": "images.allow_missing",
    "image_cache_mb": "images.cache_mb", "image_threads": "images.threads",
}


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (a mistyped flag or command), or None when nothing is close."""
    choices = list(choices)
    if word.startswith("-"):  # --dryrun and --dry-run differ only by the separator: compare without them
        plain: dict[str, str] = {}
        for c in choices:  # the first spelling registered is the one to show
            plain.setdefault(re.sub(r"[-_]", "", c), c)
        hit = plain.get(re.sub(r"[-_]", "", word))
        if hit:
            return hit
        close = difflib.get_close_matches(re.sub(r"[-_]", "", word), list(plain), n=1, cutoff=0.75)
        return plain[close[0]] if close else None
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that refuses abbreviations and says "did you mean" for a mistyped flag."""

    def __init__(self, *args, **kw):
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kw)

    def error(self, message: str):
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            hints, after_flag = [], False
            for word in unknown.group(1).split():
                flag = word.split("=", 1)[0]
                if flag.startswith("-"):
                    near = suggest(flag, self._option_string_actions)
                    hints.append(f"unknown flag {flag}" + (f"; did you mean {near}?" if near else ""))
                    after_flag = True
                elif not after_flag:  # a value after an unknown flag is its value, not news
                    near = suggest(word, COMMANDS)
                    hints.append(f"unexpected argument {word!r}" + (f" (did you mean the command 'syphus {near}'?)"
                                                                      if near else ""))
            message = "; ".join(hints)
        self.exit(2, f"{self.prog}: error: {message}\n(see: {self.prog} --help)\n")


class _Formatter(argparse.HelpFormatter):
    """Prose is wrapped to the terminal; indented lines (examples) and headings ending in ':' keep their
    lines; options are listed one flag name each."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if any(line.startswith(" ") or line.endswith(":") for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(super()._fill_text(para, width, indent))
        return "\n\n".join(out)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        # one long name each (the dashed or underscored twin is accepted, not listed), short aliases after it
        longs = [s for s in action.option_strings if s.startswith("--")]
        names = longs[:1] + [s for s in action.option_strings if not s.startswith("--")]
        text = ", ".join(names)
        if action.nargs != 0:
            text += " " + self._format_args(action, self._get_default_metavar_for_optional(action))
        return text


def _opt(group, name: str, *extra: str, **kw) -> None:
    dashed = "--" + name.replace("_", "-")
    names = ["--" + name] + ([dashed] if dashed != "--" + name else []) + list(extra)
    group.add_argument(*names, dest=name, default=None, **kw)


def _flag(group, name: str, help: str, dest: str | None = None) -> None:
    dashed = "--" + name.replace("_", "-")
    names = ["--" + name] + ([dashed] if dashed != "--" + name else [])
    group.add_argument(*names, dest=dest or name, action="store_true", default=None, help=help)


# --- the groups -----------------------------------------------------------------------------------

def add_config(g) -> None:
    g.add_argument("--config", "-c", help="a YAML run config (see configs/); flags override it")


def add_dataset(g) -> None:
    _opt(g, "name", metavar="DATASET", help="the plugin: module.Class, Class.module or a unique Class in datasets/")
    _opt(g, "prompt_path", metavar="FILE", help="the prompt file instead of the plugin's")
    _opt(g, "query_inputs_path", "-in", metavar="FILE", help="the annotation file instead of the plugin's")
    _opt(g, "datasets_dir", metavar="DIR", help="where plugins are (default datasets)")
    _opt(g, "output_dir", metavar="DIR", help="where run folders go (default output)")
    _opt(g, "dataset_version", metavar="LABEL", help="the run folder's version label (default v1)")


def add_selection(g) -> None:
    _opt(g, "slice_start", type=int, metavar="N", help="first query position to run (default 0)")
    _opt(g, "slice_end", type=int, metavar="N", help="stop before this position when > 0 (default -1: the end)")
    _flag(g, "random_sample", "shuffle the queries (with --seed) before slicing")
    _opt(g, "seed", type=int, metavar="N", help="seed of --random_sample and of sampling (default 0)")
    _opt(g, "on_duplicate", choices=["error", "suffix", "merge", "skip"],
         help="an id given twice: stop before sending (error, default), rename id#2, id#3 (suffix), one query "
              "of all its items (merge), or keep the first (skip)")


def _kind_list() -> str:
    """The registered endpoint kinds as a phrase: "openai, azure, compatible or local"."""
    *most, last = kinds.names(auto=False)
    return f"{', '.join(most)} or {last}" if most else last


def add_endpoint(g) -> None:
    g.add_argument("--endpoint", dest="endpoint", action="append", default=None, metavar="KIND|NAME",
                   help=f"auto (default: from the environment), {_kind_list()}; or the name "
                        "of an endpoint of the config's pool (repeatable; default: the whole pool)")
    _opt(g, "base_url", metavar="URL", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    _opt(g, "model", help="the model, or the Azure deployment (a hosted model needs its key in the environment)")
    _opt(g, "api_version", metavar="VERSION", help="Azure api-version")
    _opt(g, "timeout", type=float, metavar="SECONDS", help="for one request (default 120; the local model's "
                                                           "follows its measured speed)")
    _opt(g, "local_model_path", metavar="FILE", help="a GGUF model for the local endpoint (default: SmolLM2)")


def add_generation(g) -> None:
    _opt(g, "temperature", type=float, metavar="T",
         help="sampling temperature, 0-2: lower is more deterministic (default: the server's, 1 on OpenAI)")
    _opt(g, "top_p", type=float, metavar="P",
         help="nucleus sampling: only the most likely tokens making up P of the probability (default: the "
              "server's, 1); change this or --temperature, not both")
    _opt(g, "max_tokens", type=int, metavar="N", help="tokens a reply may take (default 1024)")
    _opt(g, "reply", choices=["auto", "json", "text"],
         help="JSON in a schema the server enforces (json), text parsed after (text), or JSON falling back to "
              "text if the endpoint refuses the schema (auto, default)")
    _opt(g, "schema_form", choices=list(schemaform.names()),
         help="how the schema is sent (default auto: llamacpp for the bundled model, openai otherwise)")
    _opt(g, "repairs", type=int, choices=[0, 1, 2],
         help="ask again, saying what was wrong, when a reply breaks the schema or gives no pairs: at most this "
              "many times a query (default 1; counted in attempts and cost)")


def add_images(g) -> None:
    _opt(g, "images", metavar="FILE", help="send each query's images to a vision model, looked up in this "
                                           "release image file (XX.json or XX.parquet)")
    _opt(g, "max_images", type=int, metavar="N", help="at most N images a query, evenly spaced")
    _opt(g, "image_detail", choices=["low", "high", "auto"], help="the detail sent with each image")
    _opt(g, "image_max_side", type=int, metavar="PX", help="resize so the longer side is at most PX")
    _flag(g, "allow_missing_images", "send a query whose images are missing without them (flagged in its record)")
    _opt(g, "image_cache_mb", type=float, metavar="MB", help="prepared images kept for the queries that share them "
                                                             "(default 64; 0 keeps none)")
    _opt(g, "image_threads", type=int, metavar="N", help="threads that read, decode and resize images (default: "
                                                         "one a core)")


def add_speed(g) -> None:
    _opt(g, "num_threads", type=int, metavar="N", help="requests in flight at once (default 8; the local model: "
                                                       "its server's slots)")
    _opt(g, "rpm", type=float, help="requests per minute (default: learnt from response headers)")
    _opt(g, "tpm", type=float, help="tokens per minute (default: learnt from response headers)")
    _opt(g, "max_attempts", type=int, metavar="N", help="attempts a query before it is an error (default 8)")
    _opt(g, "max_retry_seconds", type=float, metavar="SECONDS", help="of retrying a query (default 600)")
    _opt(g, "drain_timeout", type=float, metavar="SECONDS", help="requests on the wire get after Ctrl-C "
                                                                 "or a fatal error (default: the request timeout + 5)")


def add_money(g, batch: bool = True) -> None:
    _opt(g, "max_cost", type=float, metavar="USD", help="hard budget: stop before spent + reserved passes it")
    _opt(g, "pricing", metavar="FILE", help="the pricing table (default configs/pricing.yaml)")
    _opt(g, "price_as", metavar="MODEL", help="price the run as this model (Azure deployment names)")
    if batch:
        _opt(g, "mode", choices=["online", "batch"], help="online requests, or the Batch API (half price, 24 h)")
        _opt(g, "poll_interval", type=float, metavar="SECONDS", help="--mode batch: between status checks "
                                                                      "(default 60)")
        _opt(g, "max_enqueued_tokens", type=int, metavar="N",
             help="--mode batch: your organisation's enqueued-token limit; batches stay under it")


def add_dry_run(g) -> None:
    g.add_argument("--dry_run", "--dry-run", dest="dry_run", action="store_true",
                   help="build the prompts, print projected tokens, cost and time; send nothing")


def add_retry_errors(g) -> None:
    g.add_argument("--retry_errors", "--retry-errors", dest="retry_errors", action="store_true",
                   help="run only the queries recorded in errors.jsonl")


def add_display(g) -> None:
    g.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    g.add_argument("--verbose", "-v", action="store_true", help="log every retry")
    _opt(g, "log_interval", type=float, metavar="SECONDS", help="between progress lines when not on a terminal "
                                                                "(default 30)")


def _grouped(p: argparse.ArgumentParser, groups: Sequence[tuple[str, Callable]]) -> argparse.ArgumentParser:
    for title, adds in groups:
        g = p.add_argument_group(title)
        for add in (adds if isinstance(adds, (list, tuple)) else [adds]):
            add(g)
    return p


class _Taken:
    """An argument group whose flags are taken, not described: a subcommand's engine flags are the run's,
    described once in ``syphus --help``; its own help lists their names only, so it fits a screen."""

    def __init__(self, group):
        self.group, self.names = group, []

    def add_argument(self, *names: str, **kw):
        kw["help"] = argparse.SUPPRESS
        self.names.append(names[0])
        return self.group.add_argument(*names, **kw)


def _engine(p: argparse.ArgumentParser, adds: Sequence[Callable]) -> argparse.ArgumentParser:
    """The run's engine flags (endpoint, generation, limits, money, ...) on a subcommand, by name in its help."""
    g = p.add_argument_group("engine flags (as for a run; see syphus --help)")
    taken = _Taken(g)
    for add in adds:
        add(taken)
    g.description = " ".join(taken.names)
    return p


RUN_EXAMPLES = """\
examples:
  syphus --name Example.example          # bundled model: no key, no network
  syphus --name DC --model gpt-4o-mini --dry-run   # cost, time; sends nothing
  syphus --name DC --max-cost 25         # OPENAI_API_KEY set; stops at $25

commands (each with its own --help):
  coldstart   try in-context examples on a sample, side by side
  translate   a release into other languages
  judge       score each pair against its annotation
  export      a run folder -> release files
  validate    check release files
  checksum    archives against the published MD5 table
  convert     images and videos -> release image files
  view        a browsable page of the pairs
  report      figures and plots of a run or release"""

RUN_EPILOG = ("Keys come from the environment only: OPENAI_API_KEY, or AZURE_OPENAI_API_KEY with "
              "AZURE_OPENAI_ENDPOINT (the original OPENAI_API_TYPE/BASE/VERSION/ENGINE work too). With no key "
              "and no --base_url, the bundled local model is used. Every flag also takes dashes (--dry-run).")


def run_parser() -> argparse.ArgumentParser:
    """``syphus [options]``: generate pairs."""
    p = Parser(prog="syphus", usage="syphus --name DATASET [options]\n       syphus COMMAND --help",
               description="Generate instruction-response pairs from visual annotations.\n\n" + RUN_EXAMPLES,
               epilog=RUN_EPILOG)
    p.add_argument("--version", action="version", version=f"syphus {__version__}")
    return _grouped(p, [
        ("dataset", [add_config, add_dataset]),
        ("which queries", add_selection),
        ("what to do instead of a run", [add_dry_run,
                                         lambda g: g.add_argument("--list", action="store_true",
                                                                  help="list the datasets in datasets/"),
                                         lambda g: g.add_argument("--reparse", action="store_true",
                                                                  help="re-parse the raw replies with the "
                                                                       "current parser; sends nothing"),
                                         add_retry_errors,
                                         lambda g: g.add_argument("--status", action="store_true",
                                                                  help="--mode batch: every batch's progress")]),
        ("endpoint", add_endpoint),
        ("generation", add_generation),
        ("speed, limits and retries", add_speed),
        ("money", add_money),
        ("images to the model", add_images),
        ("display", add_display),
    ])


# what a run on the engine needs besides its own flags: every subcommand that sends takes these
ENGINE = (add_endpoint, add_generation, add_speed, add_money, add_display)


def coldstart_parser() -> argparse.ArgumentParser:
    p = Parser(prog="syphus coldstart", usage="syphus coldstart --name DATASET [options]",
               description="Try the prompt's in-context examples, zero-shot, and each candidate set in "
                           "<prompt>.candidates.json on one seeded sample, side by side; or promote a sampled "
                           "answer into the prompt file.\n\nexamples:\n"
                           "  syphus coldstart --name DC --sample 20 --seed 0 --view\n"
                           "  syphus coldstart --name DC --promote v_Qk7rT2mXwLs")

    def own(g) -> None:
        g.add_argument("--sample", type=int, default=20, metavar="N", help="queries to sample (default 20)")
        g.add_argument("--candidates", metavar="FILE",
                       help="the candidates file (default: <prompt stem>.candidates.json beside the prompt)")
        g.add_argument("--candidate", action="append", metavar="NAME", help="try only this one (repeatable)")
        g.add_argument("--promote", metavar="QUERY_ID", help="add this sampled query and its answer to the prompt")
        g.add_argument("--from", dest="source", default="current", metavar="CANDIDATE",
                       help="--promote: whose answer (default current)")
        g.add_argument("--edit", metavar="FILE", help="--promote: the answer as Question:/Answer: lines instead")
        g.add_argument("--view", action="store_true", help="also build the viewer: each query, candidates side "
                                                           "by side")
        g.add_argument("--judge", action="store_true", help="judge each candidate's pairs; rank by mean score")
        g.add_argument("--judge_endpoint", "--judge-endpoint", metavar="NAME",
                       help="judge with this endpoint of the config's pool (implies --judge)")
        _opt(g, "seed", type=int, metavar="N", help="the sample's seed (default 0)")

    _grouped(p, [
        ("cold start", own),
        ("dataset", [add_config, add_dataset, lambda g: _opt(g, "on_duplicate",
                                                             choices=["error", "suffix", "merge", "skip"],
                                                             help="an id given twice (see syphus --help)")]),
    ])
    return _engine(p, [add_endpoint, add_generation, add_speed, lambda g: add_money(g, batch=False), add_images,
                       add_display])


def translate_parser(default_langs: str) -> argparse.ArgumentParser:
    p = Parser(prog="syphus translate", usage="syphus translate SOURCE [options]",
               description="Translate an XX_instructions.json (or a run folder, exported first) into other "
                           "languages: an ordinary run with limits, retries, resume, --dry-run, --max-cost.\n\n"
                           "examples:\n"
                           "  syphus translate output/DC/v1/export/DC_instructions.json\n"
                           "  syphus translate DC_instructions.json --langs de,ja --per-language")

    def own(g) -> None:
        g.add_argument("source", help="XX_instructions.json, or a run folder such as output/DC/v1")
        g.add_argument("--langs", default=default_langs, help="comma-separated ISO codes (default: %(default)s)")
        g.add_argument("--per_language", "--per-language", action="store_true",
                       help="one request per language instead of all in one")
        g.add_argument("--out", metavar="DIR", help="where the per-language files go (default: <run>/export)")
        add_dry_run(g)
        add_retry_errors(g)

    _grouped(p, [
        ("translate", own),
        ("which queries", [lambda g: _opt(g, "slice_start", type=int, metavar="N", help="first to translate "
                                                                                          "(default 0)"),
                           lambda g: _opt(g, "slice_end", type=int, metavar="N", help="stop before this one "
                                                                                        "(default -1: the end)")]),
        ("run folder", [add_config, lambda g: _opt(g, "output_dir", metavar="DIR",
                                                   help="where run folders go (default output)"),
                        lambda g: _opt(g, "dataset_version", metavar="LABEL",
                                       help="the translation run's version label (default v1)")]),
    ])
    return _engine(p, ENGINE)


def judge_parser(prompt: str, criteria: Sequence[str]) -> argparse.ArgumentParser:
    p = Parser(prog="syphus judge", usage="syphus judge RUN [options]",
               description=f"Score every pair of a run folder against the annotation it was made from with a "
                           f"judge model and the rubric of {prompt} ({', '.join(criteria)}: 1-5 each, and a "
                           "reason); verdicts go to <run>/judge/<version>/.\n\nexamples:\n"
                           "  syphus judge output/DC/v1 --dry-run\n"
                           "  syphus judge output/DC/v1 --endpoint judge-4o --judge_version gpt4o")

    def own(g) -> None:
        g.add_argument("run", help="the run folder to judge, e.g. output/DC/v1")
        g.add_argument("--judge_prompt", "--judge-prompt", default=None, metavar="FILE",
                       help=f"the rubric (default: {prompt})")
        g.add_argument("--judge_version", "--judge-version", default="v1", metavar="LABEL",
                       help="the folder under <run>/judge/ (one per judge model; default v1)")
        add_dry_run(g)
        add_retry_errors(g)

    _grouped(p, [
        ("judge", own), ("config", add_config),
        ("which queries", [lambda g: _opt(g, "slice_start", type=int, metavar="N", help="first to judge (default 0)"),
                           lambda g: _opt(g, "slice_end", type=int, metavar="N", help="stop before this one "
                                                                                        "(default -1: the end)")]),
    ])
    return _engine(p, ENGINE)
