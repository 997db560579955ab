"""Precheck: what the check before the first request (``syphus.inputs.check_inputs``) costs on N inputs.

A generator plugin yields N small items (``{"id": "q00000000", "sentences": "a red ball on a
table"}``; ``--dup_every K`` makes every K-th id repeat an earlier one). Each N runs in its own
fresh child process, which times:

- stream: reading the plugin's items and nothing else (what the plugin itself costs);
- check: ``check_inputs`` alone (the same read, every item checked, repeated ids found exactly);

and reports the check's own cost (check - stream), its peak RSS (``ru_maxrss``; the baseline is
the RSS after imports) and the temporary disk it used. The table is printed and written to
bench/results/precheck.json.

    .venv/bin/python bench/precheck.py                              # 10^5, 10^6, 10^7 (~1 min)
    .venv/bin/python bench/precheck.py --n 100000 --dup_every 10    # with repeats, --on_duplicate merge
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

os.chdir(C.ROOT)
sys.path.insert(0, str(C.ROOT))


def maxrss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (r / 2**20) if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def vm_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ----------------------------------------------------------------------------- child
def child(n: int, dup_every: int, policy: str) -> dict:
    from syphus.dataset import AbstractDataset
    from syphus.inputs import check_inputs

    class Small(AbstractDataset):
        """N small items, ids unique unless ``dup_every`` (then every K-th repeats the item K/2 before it)."""

        def _load_query_inputs(self, path):
            for i in range(n):
                j = i - dup_every // 2 if dup_every and i % dup_every == dup_every - 1 else i
                yield {"id": f"q{j:08d}", "sentences": "a red ball on a table"}

    dataset = Small("Small", "bench/prompts/bench.json")
    baseline = vm_rss_mib()
    t0 = time.perf_counter()
    read = sum(1 for _ in dataset.open_query_inputs())
    stream_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    check = check_inputs(dataset, "bench/precheck.py (Small)", policy)
    check_s = time.perf_counter() - t0
    check.close()
    return {"n": n, "read": read, "queries": check.queries, "duplicates": check.duplicates, "policy": policy,
            "stream_s": round(stream_s, 2), "check_s": round(check_s, 2), "check_only_s": round(check_s - stream_s, 2),
            "us_per_item": round((check_s - stream_s) / n * 1e6, 3), "baseline_rss_mib": round(baseline, 1),
            "peak_rss_mib": round(maxrss_mib(), 1), "temp_disk_mb": round(check.disk_bytes / 1e6, 1)}


# ----------------------------------------------------------------------------- parent
def run_child(n: int, dup_every: int, policy: str) -> dict:
    out = subprocess.run([C.PY, __file__, "--child", str(n), "--dup_every", str(dup_every), "--policy", policy],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = ("| N | plugin stream alone | check (stream + checks) | check's own cost | per item | peak RSS "
            "(baseline) | temp disk |\n|---|---|---|---|---|---|---|")
    body = [f"| {r['n']:,} | {r['stream_s']} s | {r['check_s']} s | {r['check_only_s']} s | {r['us_per_item']} µs | "
            f"{r['peak_rss_mib']} MiB ({r['baseline_rss_mib']}) | {r['temp_disk_mb']} MB |" for r in rows]
    return "\n".join([head, *body])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", default="100000,1000000,10000000", help="comma-separated input counts")
    p.add_argument("--dup_every", type=int, default=0, help="every K-th id repeats an earlier one (0: none)")
    p.add_argument("--policy", default=None, help="--on_duplicate (default: error, or merge with --dup_every)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    policy = a.policy or ("merge" if a.dup_every else "error")
    if a.child is not None:
        print(json.dumps(child(a.child, a.dup_every, policy)))
        return
    rows = []
    for n in (int(x) for x in a.n.split(",")):
        rows.append(run_child(n, a.dup_every, policy))
        print(f"  N={n:,}: check {rows[-1]['check_s']} s (own cost {rows[-1]['check_only_s']} s), "
              f"peak RSS {rows[-1]['peak_rss_mib']} MiB", file=sys.stderr)
    print(table(rows))
    name = "precheck.json" if not a.dup_every else f"precheck_dup{a.dup_every}.json"
    path = C.write_json(name, {"benchmark": "precheck", "command": " ".join([Path(C.PY).name, *sys.argv]),
                               "item": {"id": "q%08d", "sentences": "a red ball on a table"},
                               "dup_every": a.dup_every, "policy": policy, "rows": rows, **C.machine()})
    print(f"written: {path.relative_to(C.ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
