"""``valueflow cache``: inspect or clear the LLM call cache of the workspace."""

from __future__ import annotations

import sys

import click

from valueflow.cli._common import echo_json, json_option, open_cli_workspace

__all__ = ["cache"]


@click.group("cache")
def cache() -> None:
    """Inspect or clear the LLM call cache (every model call is cached in the workspace)."""


@cache.command("stats")
@json_option
def stats_cmd(as_json: bool) -> None:
    """Cached entries and lifetime usage (calls, hits, tokens, retries) per backend and model
    (reads only; works while another process writes the workspace)."""
    from valueflow.llm import LLMCache

    ws = open_cli_workspace(read_only=True)
    try:
        # A workspace that never cached a call has no cache tables yet: nothing to migrate.
        rows = LLMCache(ws).stats() if ws.schema_version("llm") else []
        if ws.snapshot is not None:
            click.echo("note: another process is writing the workspace; these are its "
                       "numbers as of its last checkpoint", err=True)
    finally:
        ws.close()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("The LLM cache is empty.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="LLM cache and usage")
    cols = ("backend", "model", "entries", "MB", "calls", "cache hits", "failures", "retries",
            "prompt tok", "completion tok")
    for c in cols:
        table.add_column(c, justify="left" if c in ("backend", "model") else "right")
    for r in rows:
        model = r["model"] if len(r["model"]) <= 48 else "..." + r["model"][-45:]
        table.add_row(r["backend"], model, f"{r['entries']:,}", f"{r['bytes'] / 1e6:.2f}",
                      f"{r['calls']:,}", f"{r['cache_hits']:,}", f"{r['failures']:,}",
                      f"{r['retries']:,}", f"{r['prompt_tokens']:,}",
                      f"{r['completion_tokens']:,}")
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)


@cache.command("clear")
@click.option("--model", default=None, help="Only this model (as listed by `cache stats`).")
@click.option("--backend", default=None, help="Only this backend (openai, llamacpp, ...).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def clear_cmd(model: str | None, backend: str | None, yes: bool, as_json: bool) -> None:
    """Delete cached LLM results (all, or one model's). Usage totals are kept."""
    from valueflow.llm import LLMCache

    ws = open_cli_workspace()
    try:
        store = LLMCache(ws)
        n = store.count(backend, model)
        what = " ".join(x for x in (backend, model) if x) or "all models"
        if n and not yes:
            click.confirm(f"Delete {n:,} cached results of {what}?", abort=True)
        deleted = store.clear(backend, model) if n else 0
    finally:
        ws.close()
    if as_json:
        echo_json({"deleted": deleted, "backend": backend, "model": model})
    else:
        click.echo(f"Deleted {deleted:,} cached results of {what}.")
