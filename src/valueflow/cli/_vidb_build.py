"""``valueflow vidb build``: rank raw texts with judges and store calibrated VIDB items."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from valueflow.cli._common import echo_json, json_option, open_cli_workspace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build"]


def _read_texts(path: str, text_column: str) -> pd.DataFrame:
    from valueflow.tables import read_table, require_columns

    df = read_table(path, text_column=text_column)  # a .txt file: one text per line
    require_columns(df, [text_column], source=path)
    return df.rename(columns={text_column: "text"})


def _texts_per_value(df: pd.DataFrame, values: tuple[str, ...], path: str
                     ) -> dict[str, list[str]]:
    from valueflow.errors import ConfigError
    from valueflow.theories import resolve_value

    if "value" not in df.columns:
        if not values:
            raise ConfigError(f"{path} has no value column, so name the value(s) to build",
                              hint="--value benevolence (repeatable)")
        texts = [str(t) if isinstance(t, str) else "" for t in df["text"]]
        return {resolve_value(v).id: texts for v in values}
    ids = [resolve_value(str(v)).id for v in df["value"]]
    wanted = [resolve_value(v).id for v in values] or list(dict.fromkeys(ids))
    out: dict[str, list[str]] = {v: [] for v in wanted}
    for vid, t in zip(ids, df["text"], strict=True):
        if vid in out:
            out[vid].append(str(t) if isinstance(t, str) else "")
    return out


def _read_truth(path: str) -> Any:
    """A ``fn(value_id, text)`` over a text,intensity[,value] table (anchors are 0)."""
    from valueflow.tables import read_references
    from valueflow.vidb import NEUTRAL_ANCHOR_TEXTS

    refs = read_references(path)
    texts = [t.strip() for t in refs["text"]]
    if "value" in refs:
        keyed = dict(zip(zip(refs["value"], texts, strict=True), refs["intensity"], strict=True))
        plain: dict[str, float] = {}
    else:
        keyed, plain = {}, dict(zip(texts, refs["intensity"], strict=True))
    anchors = set(NEUTRAL_ANCHOR_TEXTS)

    def truth(value_id: str, text: str) -> float:
        t = text.strip()
        if (value_id, t) in keyed:
            return float(keyed[(value_id, t)])
        if t in plain:
            return float(plain[t])
        if t in anchors:
            return 0.0
        raise KeyError(t)

    return truth


def _llm_options(spec: str, base_url: tuple[str, ...], max_concurrency: int | None
                 ) -> dict[str, Any]:
    """Backend options for an LLM spec (:func:`valueflow.llm.backend_options`)."""
    from valueflow.llm import backend_options

    return backend_options(spec, base_url=base_url, max_concurrency=max_concurrency)


def _make_judges(specs: tuple[str, ...], ws: Any, truth: Any, beta: float, seed: int,
                 base_url: tuple[str, ...] = (), max_concurrency: int | None = None
                 ) -> list[Any]:
    from valueflow.errors import ConfigError
    from valueflow.judges import make_judge

    if not specs:
        raise ConfigError("a build needs a judge", hint="--judge openai/<model> or --judge sim")
    judges: list[Any] = []
    for i, spec in enumerate(specs):
        is_sim = spec == "sim" or spec.startswith("sim/")
        if is_sim and truth is None:
            raise ConfigError("--judge sim needs --sim-truth FILE (text,intensity[,value])")
        extra: dict[str, Any] = {}
        if not is_sim:
            opts = _llm_options(spec, base_url, None)
            extra = {"backend_options": opts, "max_concurrency": max_concurrency}
        judge = make_judge(spec, workspace=ws, truth=truth, beta=beta, seed=seed + i, **extra)
        if [j.name for j in judges].count(judge.name) or specs.count(spec) > 1:
            judge.name = f"{judge.name}#{i}"
        judges.append(judge)
    return judges


def _check_truth(truth: Any, per_value: dict[str, list[str]]) -> None:
    from valueflow.errors import DataError

    missing = []
    for vid, texts in per_value.items():
        for t in texts:
            try:
                truth(vid, t)
            except KeyError:
                missing.append(t)
    if missing:
        raise DataError(f"--sim-truth lacks {len(missing)} text(s), e.g. {missing[0][:60]!r}",
                        hint="the truth table needs every input text (exact text match)")


@click.command("build")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--value", "values", multiple=True,
              help="Value to build (repeatable); default: the values in INPUT's value column.")
@click.option("--judge", "judge_specs", multiple=True,
              help="Ranking judge: an LLM spec (openai/<model>, llamacpp/<gguf>, ...) or sim; "
              "repeatable (several judges give disagreement flags).")
@click.option("--k", type=int, default=4, show_default=True, help="Texts per window (2 = pairs).")
@click.option("--r", type=int, default=6, show_default=True,
              help="Windows every text takes part in (at least).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the window design.")
@click.option("--assign", type=click.Choice(["all", "split"]), default="all", show_default=True,
              help="Every judge ranks every window, or windows are split among judges.")
@click.option("--adaptive", type=float, default=0.0, show_default=True,
              help="Extra windows per text around near-ties in a second round.")
@click.option("--scale", type=click.Choice(["symmetric", "separate"]), default="symmetric",
              show_default=True, help="Quantile scaling to ±10 (without --references).")
@click.option("--neutral", "neutral_file", type=click.Path(dir_okay=False), default=None,
              help="File of texts known to be neutral (replaces the built-in anchors).")
@click.option("--references", "ref_file", type=click.Path(dir_okay=False), default=None,
              help="text,intensity[,value] items of known intensity that set the scale.")
@click.option("--disagree-z", type=float, default=3.0, show_default=True,
              help="Flag judges_disagree above this z-score between judges.")
@click.option("--categorize", is_flag=True, help="Categorise texts with a panel first.")
@click.option("--panel", "panel_specs", multiple=True, help="Panel member (repeatable).")
@click.option("--min-agree", type=int, default=None, help="Panel: accept with this many votes.")
@click.option("--min-margin", type=int, default=None, help="Panel: or with this lead.")
@click.option("--panel-allow-same", is_flag=True,
              help="Allow a model more than once in the panel (sampled, distinct samples).")
@click.option("--sim-truth", type=click.Path(dir_okay=False), default=None,
              help="For --judge sim: text,intensity[,value] latent intensities.")
@click.option("--sim-beta", type=float, default=0.5, show_default=True,
              help="For --judge sim: sharpness (utility per intensity point).")
@click.option("--text-column", default="text", show_default=True, help="INPUT's text column.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also write the items to this file (.csv, .jsonl, .parquet).")
@click.option("--diagnostics", type=click.Path(dir_okay=False), default=None,
              help="Write per-item diagnostics (utility, SE, z, per-judge utilities) here.")
@click.option("--source-name", default=None, help="Provenance: where the texts came from.")
@click.option("--license", "license_", default=None, help="License of the texts.")
@click.option("--dataset", default=None, help="Name of this batch [INPUT's stem].")
@click.option("--base-url", multiple=True,
              help="Server URL for openai/ judges and panel members; repeatable (a fleet).")
@click.option("--max-concurrency", type=int, default=None,
              help="Requests in flight per LLM judge [the backend's default].")
@click.option("--on-conflict", type=click.Choice(["error", "keep", "skip", "replace"]),
              default="error", show_default=True,
              help="A text already in the VIDB from another source: refuse before any judge "
              "call (error), store both (keep), keep the stored item (skip), or overwrite it "
              "(replace). Items of an earlier run of the same source are always updated.")
@click.option("--overwrite", is_flag=True, help="Replace existing --out/--diagnostics files.")
@click.option("--dry-run", is_flag=True, help="Show the plan (windows, judge calls); call nothing.")
@click.option("--progress/--no-progress", default=True, help="Progress bars.")
@json_option
def build(input_path: str, values: tuple[str, ...], judge_specs: tuple[str, ...], k: int, r: int,
          seed: int, assign: str, adaptive: float, scale: str, neutral_file: str | None,
          ref_file: str | None, disagree_z: float, categorize: bool,
          panel_specs: tuple[str, ...], min_agree: int | None, min_margin: int | None,
          panel_allow_same: bool, sim_truth: str | None, sim_beta: float, text_column: str,
          out: str | None, diagnostics: str | None, source_name: str | None,
          license_: str | None, dataset: str | None, base_url: tuple[str, ...],
          max_concurrency: int | None, on_conflict: str, overwrite: bool, dry_run: bool,
          progress: bool, as_json: bool) -> None:
    """Build VIDB items for one or more values from the raw texts in INPUT.

    INPUT is a .txt file (one text per line) or a table with a text column (and optionally
    a value column). Every judge ranks windows of --k texts, every text in at least --r
    windows; a Plackett–Luce fit over all rankings is calibrated to [-10, 10] with neutral
    anchor texts at 0. Items where judges disagree, with few comparisons or wide
    uncertainty are flagged, and so is every item of a value whose rankings are no better
    than chance (at_chance). Judgments are cached in the workspace: rerunning the same
    command after an interruption sends only the windows not yet answered.

    Items built with --judge sim are stored as simulation, and flagged or simulated items
    are not used as anchors or refit data (`score --vidb workspace|auto`) unless asked for
    with --vidb workspace:all.
    """
    from pydantic import ValidationError

    from valueflow.errors import ConfigError
    from valueflow.vidb._build import BuildConfig, build_vidb_async

    try:
        cfg = BuildConfig(k=k, r=r, seed=seed, assign=assign, adaptive=adaptive,  # type: ignore[arg-type]
                          scale=scale, disagree_z=disagree_z)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"invalid --{first['loc'][0]}: {first['msg']}") from exc
    if categorize and not panel_specs:
        raise ConfigError("--categorize needs a panel", hint="--panel SPEC, once per member")
    if panel_specs and not categorize:
        raise ConfigError("--panel is only used with --categorize")
    if not dry_run:
        from valueflow.tables import check_output
        from valueflow.workspace import default_workspace_path

        inputs = [input_path, neutral_file, ref_file, sim_truth, str(default_workspace_path())]
        for opt, path in (("--out", out), ("--diagnostics", diagnostics)):
            if path:
                check_output(path, overwrite=overwrite, inputs=inputs, option=opt)
        if out and diagnostics and Path(out).resolve() == Path(diagnostics).resolve():
            raise ConfigError("--out and --diagnostics name the same file")
    per_value = _texts_per_value(_read_texts(input_path, text_column), values, input_path)
    truth = _read_truth(sim_truth) if sim_truth else None
    if truth is not None:
        _check_truth(truth, per_value)
    neutral = _read_texts(neutral_file, "text")["text"].astype(str).tolist() if neutral_file \
        else None
    refs = _read_references(ref_file) if ref_file else None

    source = source_name or input_path
    if dry_run:
        _dry_run(per_value, cfg, judge_specs, panel_specs, neutral, refs, as_json,
                 _stored_elsewhere(per_value, source))
        return
    with open_cli_workspace() as ws:
        if on_conflict == "error":  # refuse before a model is loaded or a judge is asked
            from valueflow.vidb import VIDBStore, item_id
            from valueflow.vidb._store import conflict_error

            ids = [item_id(v, t) for v, ts in per_value.items() for t in ts if t.strip()]
            clash = VIDBStore(ws).foreign_items(ids, source)
            if len(clash):
                raise conflict_error(clash)
        judges = _make_judges(judge_specs, ws, truth, sim_beta, seed, base_url,
                              max_concurrency)
        categorizer = _make_panel(panel_specs, ws, min_agree, min_margin, panel_allow_same,
                                  base_url, max_concurrency) if categorize else None
        from valueflow.llm import run_sync

        result = run_sync(build_vidb_async(
            per_value, None, judges, config=cfg, categorizer=categorizer,
            neutral_texts=neutral, references=refs, workspace=ws, write=True,
            source=source, license=license_, dataset=dataset or Path(input_path).stem,
            progress=progress and not as_json,
            on_conflict=on_conflict,  # type: ignore[arg-type]
        ))
    if out:
        from valueflow.tables import write_table

        write_table(result.items, out)
    if diagnostics:
        from valueflow.tables import write_table

        write_table(result.diagnostics, diagnostics)
    rows = [rep.__dict__ for rep in result.reports]
    stored = result.items.attrs.get("stored", {})
    kind = str(result.items["source_kind"].iloc[0]) if len(result.items) else "build"
    if as_json:
        echo_json({"run_id": result.run_id, "n_items": len(result.items), "values": rows,
                   "stored": stored, "source_kind": kind, "out": out,
                   "diagnostics": diagnostics})
        return
    counts = result.items["value"].value_counts()
    for rep in result.reports:
        cal = rep.calibration
        flags = ", ".join(f"{k} {v}" for k, v in rep.flags.items()) or "none"
        click.echo(f"{rep.value}: {int(counts.get(rep.value, 0))} items, {rep.n_windows} windows, {rep.n_rankings} rankings "
                   f"({rep.n_failed} failed); calibration {cal['method']} anchored by "
                   f"{cal['anchor']}; flags: {flags}")
        if rep.n_unmeasured:
            click.echo(f"  {rep.n_unmeasured} text(s) were in no successfully ranked window: "
                       "no intensity was measured, so they were not stored", err=True)
        if rep.at_chance:
            click.echo(f"  the judges ranked {rep.value} no better than chance (p = "
                       f"{rep.signal_p:.2f} against random orders): every item is flagged "
                       "at_chance and is not used as an anchor", err=True)
    if kind == "simulation":
        click.echo("stored as simulation (a simulated judge): not used as anchors or refit "
                   "data unless asked for with --vidb workspace:all", err=True)
    if stored.get("conflicts"):
        what = {"skip": "left as stored", "keep": "stored beside the stored ones",
                "replace": "replaced"}[on_conflict]
        click.echo(f"{stored['conflicts']} item(s) were already in the VIDB from another "
                   f"source: {what}", err=True)
    n_stored = stored.get("stored", len(result.items))
    click.echo(f"stored {n_stored} items in {ws.path} (run {result.run_id})"
               + (f"; wrote {out}" if out else ""))


def _read_references(path: str) -> Any:
    from valueflow.tables import read_references

    refs = read_references(path, limit=10)
    if "value" not in refs:
        return list(zip(refs["text"], refs["intensity"], strict=True))
    out: dict[str, list[tuple[str, float]]] = {}
    for v, t, yi in zip(refs["value"], refs["text"], refs["intensity"], strict=True):
        out.setdefault(v, []).append((t, float(yi)))
    return out


def _make_panel(specs: tuple[str, ...], ws: Any, min_agree: int | None,
                min_margin: int | None, allow_same: bool, base_url: tuple[str, ...] = (),
                max_concurrency: int | None = None) -> Any:
    from valueflow.llm import LLMClient, get_backend
    from valueflow.vidb._build_categorize import PanelCategorizer
    from valueflow.vidb._categorize import AcceptanceRule

    rule = AcceptanceRule.for_panel(len(specs))
    if min_agree is not None or min_margin is not None:
        rule = AcceptanceRule(min_agree=min_agree or rule.min_agree,
                              min_margin=min_margin if min_margin is not None else rule.min_margin)
    return PanelCategorizer([LLMClient(get_backend(s, **_llm_options(s, base_url, None)),
                                       workspace=ws, max_concurrency=max_concurrency)
                             for s in specs], rule, allow_same_model=allow_same)


def _stored_elsewhere(per_value: dict[str, list[str]], source: str) -> int:
    """How many texts to build the workspace VIDB holds from another source (0 without a
    workspace); read-only, so a dry run works beside a running build."""
    from valueflow.vidb import VIDBStore, item_id
    from valueflow.workspace import default_workspace_path

    if not default_workspace_path().exists():
        return 0
    with open_cli_workspace(read_only=True) as ws:
        ids = [item_id(v, t) for v, ts in per_value.items() for t in ts if t.strip()]
        return len(VIDBStore(ws).foreign_items(ids, source))


def _dry_run(per_value: dict[str, list[str]], cfg: Any, judges: tuple[str, ...],
             panel: tuple[str, ...], neutral: list[str] | None, refs: Any, as_json: bool,
             conflicts: int = 0) -> None:
    from valueflow.vidb import estimate_build_cost

    simulated = [i for i, s in enumerate(judges) if s == "sim" or s.startswith("sim/")]
    costs = estimate_build_cost(per_value, None, config=cfg, n_judges=max(1, len(judges)),
                                simulated=simulated, neutral_texts=neutral, references=refs,
                                n_panel=len(panel))
    plan = [{"value": c.value, "texts": c.n_texts, "neutral_anchors": c.n_neutral,
             "references": c.n_reference, "windows": c.n_windows,
             "adaptive_windows": c.n_adaptive_windows, "judge_calls": c.judge_calls,
             "llm_calls": c.llm_calls, "prompt_tokens": c.prompt_tokens,
             "panel_calls_per_level": c.panel_calls_per_level, "exact": c.exact}
            for c in costs]
    if as_json:
        echo_json({"dry_run": True, "judges": list(judges), "panel": list(panel), "plan": plan,
                   "conflicts": conflicts})
        return
    for p in plan:
        click.echo(
            f"{p['value']}: {p['texts']} texts + {p['neutral_anchors']} neutral anchors"
            + (f" + {p['references']} references" if p["references"] else "")
            + f", {p['windows']} windows of {cfg.k}"
            + (f" + at most {p['adaptive_windows']} adaptive" if p["adaptive_windows"] else "")
            + f", {'' if p['exact'] else 'at most '}{p['judge_calls']} judge calls"
            + (f" (about {p['prompt_tokens']:,} prompt tokens in {p['llm_calls']} LLM calls)"
               if p["llm_calls"] else "")
            + (f", {p['panel_calls_per_level']} panel calls per level" if panel else ""))
    if conflicts:
        click.echo(f"{conflicts} text(s) are already in the VIDB from another source: the build "
                   "stops unless --on-conflict skip, keep or replace says what to do")
    click.echo("dry run: nothing was called or stored (cached answers would be reused)")
