"""The command line as a thin shell: one guard from the error tree to exit codes (through the one
redactor), and subcommands whose --help describes their own flags and names the engine's."""

from __future__ import annotations

import io

import pytest

from syphus.cli import main
from syphus.cli.exits import Exit, ended, guard
from syphus.cli.flags import coldstart_parser, judge_parser, run_parser, translate_parser
from syphus.errors import FatalError, ItemError, UserError

KEY = "sk-test-0123456789abcdef"


def test_the_guard_maps_the_error_tree_to_one_line_and_an_exit_code():
    said = []

    def raises(e):
        def command() -> int:
            raise e
        return command

    assert guard(raises(UserError("DC.json: no such file")), said.append) == Exit.USER
    assert guard(raises(FatalError("401 from the endpoint")), said.append) == Exit.FATAL
    assert guard(lambda: 0, said.append) == Exit.OK
    assert said == ["error: DC.json: no such file", "stopped: 401 from the endpoint"]
    with pytest.raises(ItemError):  # per-item errors are the engine's to record, never the CLI's to map
        guard(raises(ItemError("bad", kind="parse")), said.append)


def test_a_finished_run_says_its_error_or_exits_by_its_status():
    said = []
    assert ended(None, "budget", said.append) == Exit.BUDGET
    assert ended(None, "interrupted", said.append) == Exit.INTERRUPTED
    assert ended(UserError("fix the prompt"), "failed", said.append) == Exit.USER
    assert ended(FatalError("disk full"), "failed", said.append) == Exit.FATAL
    assert said == ["error: fix the prompt", "stopped: disk full"]


@pytest.mark.parametrize("argv", [["export"], ["validate"], ["translate"], ["report"]])
def test_every_command_redacts_its_error_line(tmp_path, argv):
    out = io.StringIO()
    missing = str(tmp_path / f"run-{KEY}" / "DC_instructions.json")
    code = main([*argv, missing], env={"OPENAI_API_KEY": KEY}, stream=out)
    assert code == Exit.USER, out.getvalue()
    assert "error: " in out.getvalue() and KEY not in out.getvalue() and "***" in out.getvalue()


def test_a_mistyped_command_is_one_line_with_a_suggestion():
    out = io.StringIO()
    assert main(["exprot", "x"], env={}, stream=out) == Exit.USER
    assert "did you mean 'syphus export'" in out.getvalue()


@pytest.mark.parametrize("parser", [lambda: translate_parser("zh,es"), coldstart_parser,
                                    lambda: judge_parser("prompts/judge.yaml", ("grounded",))])
def test_subcommand_help_fits_a_screen_and_still_takes_every_engine_flag(parser):
    p = parser()
    text = p.format_help()
    assert len(text.splitlines()) <= 60, text
    assert "--num_threads" in text and "requests in flight" not in text  # named, described once in syphus --help
    positional = {"syphus translate": ["a.json"], "syphus judge": ["output/DC/v1"]}.get(p.prog, [])
    args = p.parse_args([*positional, "--num-threads", "4", "--max_cost", "2", "--model", "m", "-q",
                         "--temperature", "0.2"])
    assert (args.num_threads, args.max_cost, args.model, args.quiet, args.temperature) == (4, 2.0, "m", True, 0.2)


def test_the_run_describes_every_flag():
    text = run_parser().format_help()
    assert "requests in flight" in text and "--max_enqueued_tokens" in text
