"""``valueflow generate``: generate text for prompts with any LLM backend, resumably."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from valueflow.cli._common import LLMFlags, echo_json, llm_options, open_cli_workspace
from valueflow.errors import BackendError, ConfigError, DataError

__all__ = ["generate", "read_prompts"]


def read_prompts(path: str, column: str = "prompt") -> list[dict[str, Any]]:
    """Rows with a ``prompt`` (and optional ``id``, ``system``) from any table file the
    commands read (:func:`valueflow.tables.read_table`); a ``.txt`` file holds one prompt per
    line. Empty cells are left out of a row."""
    from valueflow.tables import read_table

    df = read_table(path, text_column=column)
    if column not in df.columns:
        raise DataError(f"{path} has no {column!r} column (columns: "
                        f"{', '.join(sorted(map(str, df.columns))) or 'none'})",
                        hint="name the prompt column with --column")
    rows = [{str(k): v for k, v in r.items() if not (isinstance(v, float) and v != v)}
            for r in df.to_dict(orient="records")]
    for r in rows:
        if not isinstance(r.get(column), str) or not r[column].strip():
            raise DataError(f"{path} has an empty or non-text prompt: {r!r}"[:200])
    return rows


def _parse_option(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--option needs KEY=VALUE, got {item!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.replace("-", "_"), value


def _write(rows: list[dict[str, Any]], out: str | None) -> None:
    if out is None:
        for r in rows:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["prompt"],
                               delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    else:
        with path.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


@click.command("generate")
@click.argument("input_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--prompt", "prompts", multiple=True, help="A prompt (repeatable), instead of a file.")
@click.option("--column", default="prompt", show_default=True, help="Prompt column of INPUT_FILE.")
@click.option("--model", "-m", "spec", default=None,
              help="Backend spec: llamacpp/smollm2 (default), openai/<model>, hf/<path>, "
              "vllm/<model>.")
@click.option("--system", default=None, help="System prompt for every request.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--top-p", type=float, default=None)
@click.option("--seed", type=int, default=None, help="Sampling seed (sent to the backend).")
@click.option("--samples", type=int, default=1, show_default=True,
              help="Samples per prompt (distinct at temperature > 0).")
@click.option("--json-schema", "schema_file", type=click.Path(exists=True, dir_okay=False),
              help="A JSON schema file the output must follow.")
@llm_options
@click.option("--option", "options", multiple=True,
              help="Backend option KEY=VALUE (JSON values), e.g. n_ctx=8192; repeatable.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--out", "-o", default=None, help="Write results to FILE (.jsonl or .csv).")
@click.option("--dry-run", is_flag=True, help="Print the calls and tokens it would spend; call "
              "nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def generate(input_file: str | None, prompts: tuple[str, ...], column: str, spec: str | None,
             system: str | None, max_tokens: int, temperature: float, top_p: float | None,
             seed: int | None, samples: int, schema_file: str | None, llm: LLMFlags,
             options: tuple[str, ...], no_cache: bool, out: str | None, dry_run: bool,
             as_json: bool, quiet: bool) -> None:
    """Generate text for prompts from INPUT_FILE (CSV/JSONL/TXT) or --prompt.

    Every result is saved in the workspace cache as it arrives: an interrupted run
    (Ctrl-C, a crash, a killed job) started again makes only the calls still missing.
    """
    from valueflow.llm import DEFAULT_MODEL, ChatRequest, LLMClient, get_backend, run_sync

    if bool(input_file) == bool(prompts):
        raise ConfigError("give prompts either as INPUT_FILE or with --prompt",
                          hint='valueflow generate --prompt "Hello" or valueflow generate '
                          "prompts.csv")
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    rows = read_prompts(input_file, column) if input_file else [{column: p} for p in prompts]
    schema = None
    if schema_file:
        try:
            schema = json.loads(Path(schema_file).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DataError(f"{schema_file} is not valid JSON: {exc}") from exc

    spec = spec or DEFAULT_MODEL
    backend = get_backend(spec, **llm.backend_options(spec, dict(_parse_option(o)
                                                                  for o in options)))

    requests, meta = [], []
    for n, row in enumerate(rows):
        sys_prompt = row.get("system") or system
        for s in range(samples):
            requests.append(ChatRequest.from_prompt(
                row[column], system=sys_prompt, max_tokens=max_tokens, temperature=temperature,
                top_p=top_p, seed=seed, sample_index=s, json_schema=schema))
            meta.append({"id": row.get("id", n), "prompt": row[column], "sample": s})

    ws = open_cli_workspace()
    try:
        client = LLMClient(backend, ws, cache=not no_cache,
                           max_concurrency=llm.max_concurrency)
        if dry_run:
            est = client.estimate(requests)
            client.close()
            if as_json:
                echo_json(est.as_dict())
            else:
                click.echo(f"{est.backend}: {est.requests} requests, {est.unique} distinct, "
                           f"{est.cached} cached -> {est.calls} calls, "
                           f"~{est.prompt_tokens} prompt tokens, "
                           f"<= {est.max_completion_tokens} completion tokens")
            return
        run_spec = {"model": spec, "backend": backend.spec, "identity": backend.cache_identity(),
                    "n_prompts": len(rows), "samples": samples, "system": system,
                    "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                    "seed": seed, "json_schema": schema, "input": input_file}
        run_id = ws.start_run("generate", run_spec)
        client.run_id = run_id
        try:
            results = run_sync(client.generate(requests, progress=not quiet))
        except BaseException:
            ws.finish_run(run_id, "interrupted")
            raise
        finally:
            client.close()
        failed = [r for r in results if not r.ok]
        ws.finish_run(run_id, "done" if not failed else "partial")
    finally:
        ws.close()

    records = [{**m, "text": r.text, "finish_reason": r.finish_reason,
                "prompt_tokens": r.usage.prompt_tokens,
                "completion_tokens": r.usage.completion_tokens, "cached": r.cached,
                "error": r.error} for m, r in zip(meta, results, strict=True)]
    if out is None and len(records) == 1 and not failed:
        click.echo(records[0]["text"])
    else:
        _write(records, out)
    if not quiet:
        hits = sum(r.cached for r in results)
        click.echo(f"{len(results)} results ({hits} from the cache, {len(failed)} failed)"
                   + (f" written to {out}" if out else ""), err=True)
    if failed:
        if len(failed) == len(results):
            raise BackendError(f"all {len(results)} requests failed; first error: "
                               f"{failed[0].error}",
                               hint="check the model and server, then run the same command again")
        click.echo(f"{len(failed)} requests failed (first: {failed[0].error}); run the same "
                   "command again to retry only those", err=True)
        sys.exit(1)
