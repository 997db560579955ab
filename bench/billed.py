"""Billed against counted: Ctrl-C in the middle of 1,000 slow requests, then a resume.

    .venv/bin/python bench/billed.py

The fake server (0.5 s a reply) counts every request it receives: what a real one would bill.
The run (64 in flight, --drain_timeout 0.1, so the requests on the wire are cut off) is stopped
with SIGINT after 400 requests arrived, then run again to the end. The run counts a request in
its record's ``attempts`` or, when no record settled it, in ``lost.jsonl`` (the write-ahead log's
charge at the worst case). The two totals must be equal.
"""
import json, os, signal, subprocess, sys, tempfile, time
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fakeserver import FakeOpenAI, Reply
from tests.helpers import make_numbers, lines
root = Path(tempfile.mkdtemp(prefix="syphus-billed-")); make_numbers(root, 1000)
env = {**os.environ, "OPENAI_API_KEY": "sk-bench-not-a-secret-000", "PYTHONPATH": str(ROOT)}
ok = Reply.ok("Question: a?\nAnswer: b.", usage={"prompt_tokens": 30, "completion_tokens": 8}, delay=0.5)
with FakeOpenAI() as s:
    s.responder = lambda body, n: ok
    args = [sys.executable, str(ROOT / "main.py"), "--name", "Numbers.numbers", "--base_url", s.base_url, "--num_threads", "64",
            "--reply", "text", "--drain_timeout", "0.1", "-q"]
    p = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s.wait_for(lambda: s.request_count >= 400, timeout=120)
    p.send_signal(signal.SIGINT); out, _ = p.communicate(timeout=60)
    at_stop = s.request_count
    folder = root / "output/Numbers/v1"
    recs = lines(folder / "pairs.jsonl")
    print(f"stopped (exit {p.returncode}): server received {at_stop}, records {len(recs)} with {sum(r['attempts'] for r in recs)} attempts")
    time.sleep(1.0)  # let the server finish serving what was cut off (it counted them on arrival)
    p = subprocess.run(args[:-3] + ["-q"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    recs = lines(folder / "pairs.jsonl"); lost = lines(folder / "lost.jsonl")
    counted = sum(r["attempts"] for r in recs) + sum(r["requests"] for r in lost)
    meta = json.loads((folder / "meta.json").read_text())
    print(f"resumed (exit {p.returncode}): {len(recs)} queries answered; server received {s.request_count}; run counts {counted} "
          f"({sum(r['attempts'] for r in recs)} in records + {sum(r['requests'] for r in lost)} lost, charged at the worst case); "
          f"estimated tokens {meta['counts']['estimated_prompt_tokens']} prompt / {meta['counts']['estimated_completion_tokens']} completion")
