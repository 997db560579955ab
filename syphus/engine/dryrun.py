"""Dry run: what a run would cost and take, from its prompts; nothing is sent and nothing is written.

Every figure is in the terms of the endpoint that would take the request (``syphus.engine.plan``):
its schema form, its model's count of the images, its completion budget and its price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syphus import kinds
from syphus.config import RunConfig
from syphus.dataset import AbstractDataset
from syphus.engine.cost import price_for, pricing_if_any
from syphus.engine.limits import estimate_tokens
from syphus.engine.plan import Planned, planned_endpoints
from syphus.engine.store import RunStore
from syphus.engine.structure import Structure, choose_form
from syphus.engine.workload import Inputs, LoadedDataset, load_dataset, make_attacher, prepare_inputs, run_folder
from syphus.errors import ItemError, UserError


def dry_run(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset | None = None) -> dict[str, Any]:
    """What the run would cost and take, from its prompts; nothing is sent and nothing is written.

    Prompts are built for the first ``cost.dry_run_sample`` queries not yet settled; the
    rest are counted. Completion tokens are the average of replies already received in
    the run folder when there are any, else ``max_tokens`` (the worst case).
    """
    loaded = loaded or load_dataset(cfg)
    inputs = prepare_inputs(loaded, cfg)
    try:
        return _dry_run_checked(cfg, env, loaded, inputs)
    finally:
        inputs.check.close()


def _pairs_asked(dataset: Any) -> dict[str, Any]:
    """``{"pairs_asked": [fewest, most] or None}`` when the default reply model counts the pairs from the
    system message; {} when the plugin decides the reply's shape itself."""
    if getattr(dataset, "reply_model", None) is not None or not hasattr(dataset, "requested_pairs"):
        return {}
    if type(dataset).reply_model_for is not AbstractDataset.reply_model_for:
        return {}
    count = dataset.requested_pairs()
    return {"pairs_asked": list(count) if count else None}


def _dry_run_checked(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset, inputs: Inputs) -> dict[str, Any]:
    """``dry_run`` once the inputs passed their check.

    Every figure is in the terms of the endpoint that would take the request: its schema form,
    its model's count of the images, its completion budget and its price. A pool's queries are
    shared as routing shares them (by capacity when every endpoint has limits, else by weight);
    its projection is each endpoint's share at its own price, summed.
    """
    folder = run_folder(cfg, loaded.dataset)
    store = RunStore(folder)
    if folder.exists():
        store.scan(read_only=True)
    planned = planned_endpoints(cfg, env)
    forms = {p.name: choose_form(p.kind, cfg.reply.form) for p in planned}
    structures = {form: Structure(cfg.reply.mode, form) for form in set(forms.values())}
    fmt = next(iter(structures.values())).current()  # what the run asks for unless an endpoint refuses the schema
    sample = _sample(cfg, loaded, inputs, store, planned, structures, fmt)
    n, sampled = sample.queries, sample.sampled
    answered = store.totals.get("queries_with_pairs", 0) + store.totals.get("invalid", 0)
    observed = store.totals.get("completion_tokens", 0) / answered if answered else None
    each = _endpoints(planned, forms, sample, observed, pricing_if_any(cfg.cost.pricing))

    def mean(key: str) -> float:
        return sum(e[key] * e["share"] for e in each)

    avg_images, avg_prompt, completion = mean("image"), mean("text") + mean("image"), mean("completion")
    max_tokens = mean("worst")
    report: dict[str, Any] = {
        "dataset": loaded.source, "folder": str(folder), "queries": n, "sampled": sampled,
        "already_settled": len(store.answered) + len(store.settled_errors),
        "model": planned[0].model if len(planned) == 1 else ", ".join(p.model for p in planned),
        "prompt_tokens_per_query": round(avg_prompt, 1), "completion_tokens_per_query": round(completion, 1),
        "completion_basis": "observed in this run folder" if observed is not None else "max_tokens (worst case)",
        "prompt_tokens": round(avg_prompt * n), "completion_tokens": round(completion * n),
        "worst_case_completion_tokens": round(max_tokens * n), "inputs": inputs.check.summary(),
        "reply_format": fmt,
        **_pairs_asked(loaded.dataset),
        "schema_form": (", ".join(sorted(set(forms.values()))) if fmt == "json" else None),
        **({"images_per_query": round(sample.images / sampled, 2) if sampled else 0.0,
            "image_tokens_per_query": round(avg_images, 1), "text_tokens_per_query": round(avg_prompt - avg_images, 1),
            "queries_missing_images": sample.missing,
            "image_tokens_as": planned[0].model if len(planned) == 1 else "each endpoint's model"}
           if cfg.images.path else {}),
    }
    report.update(_costs(each, n))
    if len(each) > 1:
        report["endpoints"] = [_pool_row(e, n, bool(cfg.images.path)) for e in each]
        report["unpriced"] = [e["model"] for e in each if e["price"] is None]
    report.update(_capacity(each, n))
    return report


@dataclass
class _Sample:
    """What the pass over the inputs found: queries to go, prompts built, and their tokens summed."""

    queries: int = 0
    sampled: int = 0
    images: int = 0
    missing: int = 0  # sampled queries that lack an image in the file
    text: dict[str, int] = field(default_factory=dict)  # per schema form: text + schema tokens
    image: dict[str, int] = field(default_factory=dict)  # per model: the images' tokens as it counts them


def _sample(cfg: RunConfig, loaded: LoadedDataset, inputs: Inputs, store: RunStore, planned: list[Planned],
            structures: dict[str, Structure], fmt: str) -> _Sample:
    """Count the queries not yet settled and build the prompts of the first ``cost.dry_run_sample``."""
    out = _Sample(text=dict.fromkeys(structures, 0), image={p.model: 0 for p in planned})
    with make_attacher(cfg, loaded.dataset, planned[0].model) as attacher:
        for item in inputs.items:
            if store.settled(item["id"]):
                continue
            out.queries += 1
            if out.sampled >= cfg.cost.dry_run_sample:
                continue
            for form, structure in structures.items():
                try:
                    req = structure.request(loaded.dataset, item, fmt)
                except Exception as e:
                    raise UserError(f"{loaded.source}: build_messages raised {type(e).__name__}: {e} "
                                    f"(query {item['id']!r})") from e
                out.text[form] += estimate_tokens(req.messages) + req.schema_tokens
            if attacher is not None:
                try:
                    frames, lacking = attacher.frames(item)
                except ItemError:
                    frames, lacking = [], [None]
                out.images += len(frames)
                for model in out.image:
                    out.image[model] += attacher.tokens_as(model, frames)
                out.missing += bool(lacking)
            out.sampled += 1
    return out


def _endpoints(planned: list[Planned], forms: dict[str, str], sample: _Sample, observed: float | None,
               table: Any) -> list[dict[str, Any]]:
    """Each endpoint's tokens a query, requests a minute at its limits, price and share of the queries."""
    each = []
    sampled = sample.sampled
    for p in planned:
        text = sample.text[forms[p.name]] / sampled if sampled else 0.0
        image = sample.image[p.model] / sampled if sampled else 0.0
        completion = observed if observed is not None else float(p.completion)
        rates = [p.rpm] if p.rpm else []
        if p.tpm and text + image + p.completion > 0:
            rates.append(p.tpm / (text + image + p.completion))
        each.append({"name": p.name, "model": p.model, "text": text, "image": image, "completion": completion,
                     "worst": p.completion, "rate": round(min(rates), 1) if rates else None, "weight": p.weight,
                     "price": price_for(p.model, table), "kind": p.kind})
    unknown = any(e["rate"] is None for e in each)
    basis = [e["weight"] for e in each] if unknown else [e["rate"] for e in each]  # how routing shares queries
    for e, b in zip(each, basis):
        e["share"] = b / sum(basis) if sum(basis) else 1.0 / len(each)
    return each


def _cost(e: dict[str, Any], queries: float, completion: str, batch: bool = False) -> float:
    """``queries`` of endpoint ``e`` at its price, with ``completion`` ("completion" or "worst") tokens."""
    return e["price"].cost((e["text"] + e["image"]) * queries, e[completion] * queries, batch)


def _costs(each: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Online and batch cost, expected and worst, when every endpoint is priced (the Batch API runs on one
    endpoint, ``batch_target``: a pool's batch cost is all of it there)."""
    out: dict[str, Any] = {}
    if not all(e["price"] is not None for e in each):
        return out
    for mode, batch in (("online", False), ("batch", True)):
        if batch and len(each) > 1:
            there = next((e for e in each if kinds.get(e["kind"]).batch_api), None)
            if there is None:
                continue
            costs = [(there, 1.0)]
            out["batch_endpoint"] = there["name"]
        else:
            costs = [(e, e["share"]) for e in each]
        out[f"cost_{mode}_usd"] = round(sum(_cost(e, n * share, "completion", batch) for e, share in costs), 4)
        out[f"worst_cost_{mode}_usd"] = round(sum(_cost(e, n * share, "worst", batch) for e, share in costs), 4)
    return out


def _pool_row(e: dict[str, Any], n: int, images: bool) -> dict[str, Any]:
    """One endpoint of a pool in the dry run: its share of the queries, tokens and online cost."""
    return {"name": e["name"], "model": e["model"], "queries": round(n * e["share"]),
            "prompt_tokens_per_query": round(e["text"] + e["image"], 1),
            **({"image_tokens_per_query": round(e["image"], 1)} if images else {}),
            "cost_online_usd": round(_cost(e, n * e["share"], "completion"), 4) if e["price"] else None,
            "worst_cost_online_usd": round(_cost(e, n * e["share"], "worst"), 4) if e["price"] else None}


def _capacity(each: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The pool's capacity (each endpoint's requests a minute at its limits, summed) and the wall time."""
    out: dict[str, Any] = {}
    per_endpoint = {e["name"]: e["rate"] for e in each}
    unknown = [e["name"] for e in each if e["rate"] is None]
    if len(each) > 1:
        out["endpoints_requests_per_minute"] = per_endpoint
    if not unknown:
        per_minute = sum(per_endpoint.values())
        out["requests_per_minute"] = round(per_minute, 1)
        out["wall_minutes_online"] = round(n / per_minute, 1) if per_minute else None
    elif len(each) > 1:
        out["endpoints_without_limits"] = unknown
    return out
