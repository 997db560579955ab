"""Context: one run's wiring, built once by ``run_job`` and passed whole to every step that needs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syphus.config import RunConfig
from syphus.engine.cost import Budget, Price
from syphus.engine.endpoint import Target
from syphus.engine.store import RunStore
from syphus.engine.workload import Inputs, LoadedDataset


@dataclass
class RunContext:
    """What a run is made of: the config, the dataset and its checked inputs, the run
    folder's store, the endpoints (with any local servers), their prices and the budget, the image
    attacher, which ids to skip (resume or ``--retry_errors``), and the clock and sleep (injected by tests)."""

    cfg: RunConfig
    loaded: LoadedDataset
    inputs: Inputs
    store: RunStore
    targets: list[Target]
    servers: list[Any]
    prices: Mapping[str, Price | None]
    budget: Budget
    attacher: Any
    skip: Callable[[str], bool]
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    started_at: str = ""
    summary: dict[str, Any] = field(default_factory=dict)  # what the check before the run found
