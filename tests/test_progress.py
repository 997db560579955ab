"""The status line on a terminal: it fits the width, messages get lines of their own, the drain shows as
stopping, and the run's figures are told apart from this session's (issue 26, item 4)."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from syphus.cli.progress import Progress, render
from syphus.engine.stats import Stats


def screen(written: str, width: int) -> list[str]:
    """The lines a terminal of ``width`` columns shows after ``written`` (\\r, erase-line, newline, wrapping)."""
    lines, row, col = [[]], 0, 0
    i = 0
    while i < len(written):
        if written.startswith("\x1b[K", i):
            del lines[row][col:]
            i += 3
            continue
        ch = written[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append([])
        else:
            if col == width:  # the terminal wraps: what is left of a longer line stays on the screen
                row, col = row + 1, 0
                if row == len(lines):
                    lines.append([])
            line = lines[row]
            line[col:col + 1] = [ch]
            col += 1
    return ["".join(line) for line in lines]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def busy() -> Stats:
    """A resumed run, well on its way, with every field the line can show."""
    return Stats(total=123_456, skipped=100_000, answered=4_000, pairs=12_000, invalid=7, errors=3, retries=10,
                 rate_limited=2, prompt_tokens=3_400_000, completion_tokens=800_000, images=300,
                 image_tokens=90_000, started=0.0)


POOL = " | $12.3456 of $25 | east 2000 (3×429), west 1999 cooling"


@pytest.mark.parametrize("width", [80, 200])
def test_the_line_fits_the_terminal(width):
    line = render(busy(), 100.0, 0, POOL, width)
    assert len(line) <= width - 1  # the last column is left free: a full line would wrap on some terminals
    assert line.startswith("104003/123456 84.2% | ") and "ETA 8m05s" in line and "pairs 12000" in line
    if width == 200:  # room for the session's figures and the cost; the pool's list is what goes
        assert "100000 before" in line and "session: 40.0/s, pairs 12000, invalid 7, errors 3" in line
        assert "$12.3456 of $25" in line and "tokens 3.4M in / 800.0k out" in line
    # the full line (a log file has no width) has every figure
    full = render(busy(), 100.0, 0, POOL)
    assert len(full) > 200 and "west 1999 cooling" in full


def test_the_run_and_the_session_are_labelled():
    fresh = render(Stats(total=40, answered=4, pairs=8, started=0.0), 2.0)
    assert fresh.startswith("4/40 10.0% | ETA 18s | session: 2.0/s, pairs 8,")
    resumed = render(Stats(total=40, skipped=20, answered=4, pairs=8, started=0.0), 2.0)
    # 24 of 40 for the run, of which 20 before this session; the pairs are this session's
    assert resumed.startswith("24/40 60.0% | 20 before | ETA 8s | session: 2.0/s, pairs 8,")


def test_the_drain_shows_as_stopping_not_an_eta():
    s = busy()
    s.stopping, s.in_flight = True, 5
    line = render(s, 100.0, 0, "", 80)
    assert "stopping: 5 on the wire" in line and "ETA" not in line


def test_messages_come_on_their_own_lines_and_nothing_wraps(monkeypatch):
    term = Terminal()
    logger = logging.getLogger("syphus")
    handler = logging.StreamHandler(term)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    logger.setLevel(logging.INFO)
    s = busy()
    now = [100.0]

    snapshots = {}
    message = ("SIGINT: stopping; finishing 5 request(s) on the wire (at most 60s). Press Ctrl-C again to quit "
               "now.")

    async def session() -> None:
        bar = Progress(s, lambda: now[0], stream=term, interval=3600, extra=lambda: POOL, columns=lambda: 80)
        bar.start()
        for n in range(5):
            s.answered += 1
            now[0] += 1
            bar.draw()
        snapshots["running"] = screen(term.getvalue(), 80)
        logger.warning(message)
        s.stopping, s.in_flight = True, 5
        bar.draw()
        snapshots["stopping"] = screen(term.getvalue(), 80)
        await bar.stop()

    asyncio.run(session())
    # five redraws leave one line on an 80-column screen (the old 125-character line left a wrapped half each time)
    running = [line for line in snapshots["running"] if line]
    assert len(running) == 1 and running[0].startswith("104008/123456 84.2% | ETA") and len(running[0]) <= 79
    # the message has its own lines (it wraps as any long message does), the status line comes back under it
    text = "WARNING " + message
    assert snapshots["stopping"] == [text[:80], text[80:], snapshots["stopping"][2]]
    assert snapshots["stopping"][2].startswith("104008/123456 84.2% | stopping: 5 on the wire")
    # at the end the status line is wiped; the handler is left as it was
    assert [line for line in screen(term.getvalue(), 80) if line] == [text[:80], text[80:]]
    assert handler.filters == []
