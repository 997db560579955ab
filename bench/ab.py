"""A/B: the engine's req/s and CPU per request (text replies) from two source trees, alternating.

Each run is its own process with its own fake server (bench/_common.FakeServer), 3,000 requests,
64 in flight, zero latency. Make the other tree with git worktree:

    git worktree add /tmp/before 4532b26
    .venv/bin/python bench/ab.py /tmp/before .          # 5 runs a tree; medians at the end
"""
import json, subprocess, sys, statistics
CHILD = r'''
import asyncio, os, sys, tempfile, time
sys.path.insert(0, "bench")
import _common as C
from syphus.config import load_config
from syphus.engine.job import run_job
os.environ["SYPHUS_BENCH_N"] = "3000"
with C.FakeServer() as server:
    cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": 64, "endpoint.base_url": server.base_url,
                             "output_dir": tempfile.mkdtemp(), **({"reply.mode": "text"} if "reply" in open("syphus/config.py").read() else {})})
    t = time.perf_counter(); c = time.process_time()
    asyncio.run(run_job(cfg, {"OPENAI_API_KEY": "x"}, install_signals=False))
    print(3000 / (time.perf_counter() - t), (time.process_time() - c) / 3000 * 1e6)
'''
import os
trees = {"before": os.path.abspath(sys.argv[1]), "after": os.path.abspath(sys.argv[2])}
res = {k: [] for k in trees}
for r in range(5):
    for name, tree in trees.items():
        out = subprocess.run([sys.executable, "-c", CHILD], cwd=tree, capture_output=True, text=True,
                             env={"PYTHONPATH": tree, "PATH": "/usr/bin:/bin"})
        rps, cpu = map(float, out.stdout.split()[-2:])
        res[name].append((rps, cpu))
        print(name, round(rps), round(cpu), flush=True)
for name, rows in res.items():
    print(name, "median req/s", round(statistics.median(x for x, _ in rows)), "median cpu us/req", round(statistics.median(y for _, y in rows)))
