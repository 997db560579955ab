"""Meta: ``meta.json``, what ran, with what (no secrets), what the inputs held and what the folder holds now."""

from __future__ import annotations

from typing import Any

from syphus import __version__
from syphus.engine.context import RunContext
from syphus.engine.record import now_iso
from syphus.engine.stats import RunStatus
from syphus.redaction import without_credentials


def build_meta(run: RunContext, runner: Any, status: RunStatus, elapsed: float) -> dict[str, Any]:
    """meta.json for ``run`` as ``runner`` (the online pool's ``Runner`` or the ``BatchRunner``) has it now."""
    cfg, loaded, budget, stats = run.cfg, run.loaded, run.budget, runner.stats
    pool = getattr(runner, "pool", None)
    structure = getattr(runner, "structure", None)
    return {
        "inputs": run.summary,
        "cost": {"spent_usd": round(budget.spent, 6), "estimated_usd": round(budget.estimated, 6),
                 "max_cost": cfg.cost.max_cost, "priced": bool(budget.price)},
        "syphus_version": __version__,
        "status": str(status),
        "dataset": {"name": loaded.dataset.name, "class": type(loaded.dataset).__name__,
                    "scene": getattr(loaded.dataset, "scene", None),
                    "plugin": str(loaded.path), "prompt_path": str(loaded.dataset.prompt_path),
                    "query_inputs_path": str(loaded.dataset.query_inputs_path)},
        "endpoint": run.targets[0].endpoint.describe(),
        "counts": dict(run.store.totals),
        "session": {
            "started_at": run.started_at, "updated_at": now_iso(), "elapsed_s": round(elapsed, 3),
            **{k: getattr(stats, k) for k in ("total", "skipped", "answered", "pairs", "invalid", "errors",
                                              "requests", "retries", "rate_limited", "prompt_tokens",
                                              "completion_tokens", "repairs", "repaired")},
        },
        # the burst the online run probed: the first endpoint's limiter (every endpoint's is under ``endpoints``)
        "limits": pool.members[0].limiter.describe() if pool is not None else None,
        "reply": structure.describe() if structure is not None else None,  # JSON or text, and any fallback
        # every endpoint of the pool (one when there is no pool): state, requests, 429s, tokens, cost
        "endpoints": pool.describe() if pool is not None else None,
        "config": without_credentials(cfg.model_dump(mode="json")),  # a --base_url's password is no record
    }
