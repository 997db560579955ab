"""Summary: what the CLI prints when a run ends and for a dry run (only ``cli`` prints)."""

from __future__ import annotations

from pathlib import Path


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


def run_summary(result) -> str:
    """What a run did this session and what its folder holds, with what to do next."""
    t, s = result.totals, result.stats
    lines = [f"{result.status}: {s.settled} queries ended this session (answered or failed) in "
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
        resend = t.get("errors_to_resend", 0)
        final = t["errors"] - resend
        if final:
            lines.append(f"  {final} errors are final for their query (in {result.folder / 'errors.jsonl'}); run "
                         "again with --retry_errors to send those queries again")
        if resend:
            lines.append(f"  {resend} errors were the endpoint's, not their query's (in "
                         f"{result.folder / 'errors.jsonl'}): they are not settled, and the same command sends them "
                         "again")
    if result.budget is not None and result.budget.price is not None and (result.budget.spent or result.budget.limit):
        cap = f" of the ${result.budget.limit:g} cap" if result.budget.limit else ""
        lines.append(f"  cost so far ${result.budget.spent:.4f}{cap}")
    if result.status == "budget":
        lines.append("  stopped before passing --max-cost; rerun with a higher --max-cost to go on (nothing is lost)")
    if result.status == "interrupted":
        lines.append("  run the same command again to resume; nothing settled will be requested again")
    return "\n".join(lines)


def _pairs_asked_text(count: list[int] | None) -> str:
    if count is None:
        return ("  pairs asked: not read from the system message, so any number (at least one) is accepted; "
                "say how many in it (\"Write three questions\", \"four to six turns\") to have it enforced")
    low, high = count
    return f"  pairs asked: {low if low == high else f'{low} to {high}'} (read from the system message)"


def dry_run_text(r: dict) -> str:
    """A dry run's figures (``syphus.engine.dryrun``) as the lines the CLI prints."""
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
             *([_pairs_asked_text(r["pairs_asked"])] if "pairs_asked" in r else []),
             f"  total: ~{r['prompt_tokens']} prompt + ~{r['completion_tokens']} completion tokens "
             f"(worst case {r['worst_case_completion_tokens']} completion)"]
    lines += _inputs_text(r.get("inputs"))
    for e in r.get("endpoints") or ():  # a pool: each endpoint's share at its own price
        lines.append(f"  {e['name']}: ~{e['queries']} queries as {e['model']}, ~{e['prompt_tokens_per_query']} prompt "
                     "tokens a query" + (f" (~{e['image_tokens_per_query']} of images)" if "image_tokens_per_query" in e
                                         else "")
                     + (f", online ~${e['cost_online_usd']} (worst ${e['worst_cost_online_usd']})"
                        if e["cost_online_usd"] is not None else ", no price in the pricing table"))
    if "cost_online_usd" in r:
        where = "across the pool" if r.get("endpoints") else f"as {r['model']}"
        lines.append(f"  cost {where}: online ~${r['cost_online_usd']} (worst ${r['worst_cost_online_usd']})"
                     + (f", batch{' on ' + r['batch_endpoint'] if r.get('batch_endpoint') else ''} "
                        f"~${r['cost_batch_usd']} (worst ${r['worst_cost_batch_usd']})"
                        if "cost_batch_usd" in r else ""))
    else:
        missing = ", ".join(map(repr, r.get("unpriced") or [r["model"]]))
        lines.append(f"  cost: no price for {missing} in the pricing table (add it, or use --price_as)")
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
