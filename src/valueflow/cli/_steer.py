"""``valueflow steer``: run steering experiments and analyse them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click

from valueflow.cli._common import (
    LLMFlags,
    echo_json,
    json_option,
    llm_options,
    open_cli_workspace,
)


@click.group()
def steer() -> None:
    """Steer models to target value intensities, and analyse how well it worked."""


@steer.command("init")
@click.argument("path", type=click.Path(dir_okay=False), default="steer.yaml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_cmd(path: str, force: bool) -> None:
    """Write a small, documented example config to PATH (default steer.yaml)."""
    from valueflow.errors import ConfigError
    from valueflow.steer import example_config_path

    p = Path(path)
    if p.exists() and not force:
        raise ConfigError(f"{p} exists", hint="pass --force to overwrite it")
    shutil.copyfile(example_config_path("small"), p)
    click.echo(f"wrote {p}; run it with: valueflow steer run {p}")


@steer.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--model", "models", multiple=True,
              help="Model spec(s) to steer instead of the config's (repeatable).")
@llm_options
@click.option("--judge", default=None, help="Judge spec instead of the config's.")
@click.option("--queries", type=int, default=None, help="Use at most this many queries.")
@click.option("--samples", type=int, default=None, help="Samples per prompt.")
@click.option("--max-tokens", type=int, default=None, help="Max tokens per answer.")
@click.option("--dry-run", is_flag=True, help="Print what would be generated and scored, "
              "and the token estimate; call nothing.")
@json_option
def run_cmd(config: str, models: tuple[str, ...], llm: LLMFlags, judge: str | None,
            queries: int | None, samples: int | None, max_tokens: int | None, dry_run: bool,
            as_json: bool) -> None:
    """Run the steering experiment in CONFIG (YAML); resumable: rerun to continue.

    The server flags (--base-url, repeatable for a fleet, --api-key-env, --timeout ...)
    apply to every openai/ model of the run, not to its judge (set those in the config).

    Exit status 3: some answers were not generated or not scored; 4: none could be, or a
    server could not be reached. What failed is not stored: a rerun retries only that.
    """
    from valueflow.steer import apply_overrides, load_config, run_steering

    cfg = apply_overrides(load_config(config), models=list(models) or None, judge=judge,
                          queries=queries, samples=samples, max_tokens=max_tokens)
    _apply_llm_flags(cfg, llm)
    with open_cli_workspace() as ws:
        summary = run_steering(cfg, ws, dry_run=dry_run, progress=not as_json,
                               echo=None if as_json else lambda m: click.echo(m, err=True))
    if as_json:
        echo_json(summary)
        _exit_unless_done(summary)
        return
    click.echo(f"run {summary['run_id']}: {summary['conditions']} conditions × "
               f"{summary['queries']} queries = {summary['trials_per_model']} answers per model")
    for label, info in summary["models"].items():
        if dry_run:
            est = info["estimate"]
            click.echo(f"  {label}: {info['reused']} stored, {est['calls']} calls, "
                       f"~{est['prompt_tokens']} prompt tokens, "
                       f"≤ {est['max_completion_tokens']} completion tokens")
        else:
            click.echo(f"  {label}: {info['generated']} generated, {info['reused']} reused, "
                       f"{info['failed']} failed")
            if info.get("first_error"):
                click.echo(f"    first error: {info['first_error']}", err=True)
    sc = summary.get("scores", {})
    if dry_run:
        click.echo(f"  scoring: up to {sc.get('pairs_upper_bound_per_model')} (answer, value) "
                   f"pairs per model with judge {sc.get('judge')}")
    else:
        failed = f", {sc['failed']} failed" if sc.get("failed") else ""
        click.echo(f"  scores: {sc.get('scored', 0)} new, {sc.get('reused', 0)} reused{failed} "
                   f"(judge {sc.get('judge')}); status {summary['status']}")
        if summary["status"] == "done":
            click.echo("next: valueflow steer analyze   or   valueflow report --out report.html")
        _exit_unless_done(summary)


def _apply_llm_flags(cfg: Any, llm: LLMFlags) -> None:
    """Put the server flags into the options of every openai/ model of ``cfg`` (they win
    over the config); flags no model of the run can use are refused, not ignored."""
    from valueflow.errors import ConfigError

    if not llm.given():
        return
    served = [m for m in cfg.models if m.spec.strip().startswith("openai/")]
    if not served:
        raise ConfigError(f"{llm.given()[0]} applies to openai/ models, and this run has none "
                          f"({', '.join(m.spec for m in cfg.models)})",
                          hint="drop it, or steer a served model: --model openai/<model>")
    for m in served:
        opts = llm.backend_options(m.spec)
        if "base_url" in opts:
            m.base_url = opts.pop("base_url")
        m.options.update(opts)


def _exit_unless_done(summary: dict[str, Any]) -> None:
    """Exit 3 (partial) or 4 (failed) with the last error, after the summary is shown."""
    from valueflow.errors import IncompleteRunError, RunFailedError

    status = summary.get("status")
    if status in ("done", "dry-run", None):
        return
    sc = summary.get("scores", {})
    gen_failed = sum(m.get("failed", 0) for m in summary["models"].values())
    errors = [m["last_error"] for m in summary["models"].values() if m.get("last_error")]
    if sc.get("last_error"):
        errors.append(f"judge: {sc['last_error']}")
    parts = []
    if gen_failed:
        parts.append(f"{gen_failed} answer(s) not generated")
    if sc.get("failed"):
        parts.append(f"{sc['failed']} (answer, value) pair(s) not scored")
    what = " and ".join(parts) or "nothing usable"
    last = f"; last error: {errors[-1]}" if errors else ""
    hint = ("what failed is not stored as final: fix the cause and run the same command "
            "again to retry only that")
    cls = RunFailedError if status == "failed" else IncompleteRunError
    raise cls(f"run {summary['run_id']} is {status}: {what}{last}", hint=hint,
              run_id=summary["run_id"])


@steer.command("analyze")
@click.option("--run", "run_id", default=None, help="Run id (default: the latest steering run).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write every table as CSV (and findings.txt) into this folder.")
@click.option("--n-boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier --out.")
@json_option
def analyze_cmd(run_id: str | None, out_dir: str | None, n_boot: int, seed: int,
                overwrite: bool, as_json: bool) -> None:
    """Shifts Δ with intervals, value types, refusals and composition of a steering run."""
    from valueflow.analysis import SteeringAnalysis, analyze
    from valueflow.steer import load_results
    from valueflow.tables import atomic_output, check_output_folder, write_table

    out_files = [f"{name}.csv" for name in SteeringAnalysis.TABLES] + ["findings.txt"]
    if out_dir:
        check_output_folder(out_dir, out_files, overwrite=overwrite)
    with open_cli_workspace(read_only=True) as ws:
        results = load_results(ws, run_id)
    analysis = analyze(results, n_boot=n_boot, seed=seed)  # says first if the run is not done
    if out_dir:
        d = Path(out_dir)
        for name, df in analysis.tables().items():
            write_table(df, d / f"{name}.csv")
        with atomic_output(d / "findings.txt") as tmp:
            tmp.write_text("\n".join(analysis.findings) + "\n", encoding="utf-8")
    if as_json:
        echo_json(analysis.to_dict())
        return
    for line in analysis.findings:
        click.echo(line)
    st = analysis.steerability
    if len(st):
        cols = ["model", "regime", "value", "baseline", "delta_up", "delta_down", "asymmetry",
                "type"]
        click.echo("")
        click.echo(st[cols].to_string(index=False, float_format=lambda x: f"{x:+.2f}"))
    if out_dir:
        click.echo(f"tables written to {out_dir}", err=True)
    sys.stdout.flush()


def _float_list(text: str | None) -> list[float] | None:
    from valueflow.errors import ConfigError

    if not text:
        return None
    try:
        return [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ConfigError(f"cannot read the coefficients {text!r}",
                          hint="write a comma-separated list, e.g. -2,-1,0,1,2") from None


@steer.command("target")
@click.option("--model", "model", default="hf/smollm2", show_default=True,
              help="Model to steer: hf/<folder|gguf> for activation steering; any spec "
              "(openai/<m> with --base-url ...) for --regime prompt.")
@llm_options
@click.option("--value", default=None, help="The value to steer (with --intensity).")
@click.option("--intensity", type=float, default=None,
              help="Its target intensity in [-10, 10].")
@click.option("--target", "targets", multiple=True, metavar="VALUE=INTENSITY",
              help="A target (repeatable, for several values at once): benevolence=+4.")
@click.option("--query", "queries", multiple=True,
              help="A question to answer (repeatable; default: bundled questions).")
@click.option("--queries", "n_queries", type=click.IntRange(min=1), default=4,
              show_default=True, help="Bundled questions to use when no --query is given.")
@click.option("--regime", type=click.Choice(["activation", "prompt", "persona"]), default=None,
              help="activation (default for hf/ models), prompt (level instructions -2..2; "
              "any model) or persona (persona prompts -2..2: someone who holds the value to "
              "that degree; any model).")
@click.option("--tolerance", type=click.FloatRange(min=0, min_open=True), default=1.5,
              show_default=True, help="A hit is within this of the target.")
@click.option("--n", "n", type=click.IntRange(min=1), default=4, show_default=True,
              help="Candidates per round.")
@click.option("--budget", type=click.IntRange(min=1), default=8, show_default=True,
              help="Candidates per question at most.")
@click.option("--layers", default=None, help="Decoder layers to steer, e.g. 10-15 "
              "(default: the model's middle band).")
@click.option("--source", type=click.Choice(["auto", "texts", "prompts", "both"]),
              default="auto", show_default=True,
              help="What steering vectors are made from (auto: seed texts when there are "
              "enough, else our contrastive prompts).")
@click.option("--coefficients", default=None,
              help="Pilot sweep of activation coefficients, e.g. -2,-1,0,1,2.")
@click.option("--coefficient", "fixed", multiple=True, metavar="VALUE=C",
              help="Use this activation coefficient (no search; must lie in the "
              "calibrated range).")
@click.option("--vector", "vector_files", multiple=True, type=click.Path(dir_okay=False),
              help="A steering-vector file (from `steer vector`) to use (repeatable).")
@click.option("--judge", default="local", show_default=True, help="Judge that measures.")
@click.option("--side-value", "side_values", multiple=True,
              help="A value not targeted on which to measure side effects (repeatable).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=80, show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write every candidate (CSV or JSONL by extension).")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None,
              help="Save the calibration curves with targets and hits (PNG/SVG/PDF).")
@json_option
def target_cmd(model: str, llm: LLMFlags, value: str | None, intensity: float | None,
               targets: tuple[str, ...], queries: tuple[str, ...], n_queries: int,
               regime: str | None, tolerance: float, n: int, budget: int, layers: str | None,
               source: str, coefficients: str | None, fixed: tuple[str, ...],
               vector_files: tuple[str, ...], judge: str, side_values: tuple[str, ...],
               max_tokens: int, out: str | None,
               plot: str | None, as_json: bool) -> None:
    """Steer MODEL so its answers express values at target intensities, and measure them.

    Calibrates first (a pilot sweep scored by the judge, fitted as a monotone curve, kept
    in the workspace), then per question generates candidates at the calibrated setting,
    scores them and adjusts until one is within --tolerance or --budget is spent. Every
    answer comes back with its measured intensity, interval and whether it hit.
    Resumable: rerun the same command to continue without repeating finished candidates.

    \b
    valueflow steer target --value benevolence --intensity 4
    valueflow steer target --target benevolence=+3 --target power=-2 --queries 6
    valueflow steer target --model openai/qwen --base-url http://host:8000/v1 \\
        --regime prompt --value power --intensity -3
    """
    from valueflow.errors import ConfigError
    from valueflow.llm import get_backend
    from valueflow.steer import SteeringVector, TargetSettings, parse_targets, steer_to_target

    goal_items = list(targets)
    if value is not None or intensity is not None:
        if value is None or intensity is None:
            raise ConfigError("--value and --intensity go together",
                              hint="e.g. --value benevolence --intensity 4, or --target "
                              "benevolence=4")
        goal_items.append(f"{value}={intensity}")
    goal = parse_targets(goal_items)
    spec = model.strip()
    regime = regime or ("activation" if spec.startswith("hf/") else "prompt")
    if fixed and regime != "activation":
        raise ConfigError("--coefficient is for activation steering", hint="drop --regime "
                          "prompt, or drop --coefficient")
    fixed_map: dict[str, float] = {}
    for item in fixed:
        name, sep, num = item.partition("=")
        try:
            fixed_map[name.strip()] = float(num)
        except ValueError:
            raise ConfigError(f"cannot read --coefficient {item!r}",
                              hint="write VALUE=C, e.g. benevolence=1.2") from None
        if not sep:
            raise ConfigError(f"cannot read --coefficient {item!r}", hint="write VALUE=C")
    settings: dict[str, Any] = {"regime": regime, "tolerance": tolerance, "n": n,
                                "budget": budget, "layers": layers, "source": source,
                                "max_tokens": max_tokens, "judge": {"spec": judge},
                                "side_values": list(side_values)}
    sweep = _float_list(coefficients)
    if sweep is not None:
        settings["coefficients"] = sweep
    cfg = TargetSettings.model_validate(settings)
    if cfg.budget < cfg.n:
        raise ConfigError(f"--budget {budget} is less than one round of --n {n}")
    opts = llm.backend_options(spec) if llm.given() else {}
    backend = get_backend(spec, **opts)
    vectors = {}
    for f in vector_files:
        vec = SteeringVector.load(f)
        vectors[vec.value] = vec
    say = None if as_json else (lambda m: click.echo(m, err=True))
    with open_cli_workspace() as ws:
        result = steer_to_target(backend, goal, ws, queries=list(queries) or n_queries,
                                 settings=cfg, vectors=vectors or None,
                                 coefficients=fixed_map or None, progress=not as_json,
                                 echo=say)
        frame = result.to_frame()
        if out:
            _write_table(result.candidates if result.candidates is not None else frame, out)
        if plot:
            from valueflow.analysis import plot_target_calibration

            plot_target_calibration(result, plot)
    if as_json:
        echo_json({**result.summary(), "results": frame.to_dict("records")})
        return
    for o in result.outcomes:
        click.echo(f"\n{o.query}")
        for v, t in o.targets.items():
            m = o.measured.get(v)
            got = "not measured" if m is None else (
                f"measured {m[0]:+.1f} [{m[1]:+.1f}, {m[2]:+.1f}]")
            mark = "hit" if o.hit else "miss"
            setting = o.settings.get(v)
            sett = "" if setting is None else (f", coefficient {setting:+.2f}"
                                               if result.regime == "activation"
                                               else f", level {int(setting):+d}")
            click.echo(f"  {v}: target {t:+g}, {got}{sett}")
        ppl = f", perplexity {o.perplexity:.1f}" if o.perplexity else ""
        if o.side_effects:
            ppl += ", side effects " + ", ".join(f"{v.split(':')[-1]} {d:+.1f}"
                                                 for v, d in o.side_effects.items())
        if o.refusal:
            ppl += ", reads as a refusal"
        click.echo(f"  {mark} after {o.n_candidates} candidate(s){ppl}")
        click.echo("  > " + " ".join(o.response.split())[:400])
    s = result.summary()
    click.echo(f"\n{s['questions']} question(s): hit rate {s['hit_rate']:.0%} within "
               f"±{tolerance:g}, RMSE {s['rmse']:.2f}, {s['mean_candidates']:.1f} candidates "
               f"on average; a single answer at the calibrated setting hit "
               f"{s['first_round_hit_rate']:.0%} of the time (judge {result.judge}; run "
               f"{result.run_id})")


def _write_table(df: Any, path: str) -> None:
    from valueflow.errors import ConfigError

    p = Path(path)
    if p.suffix.lower() == ".csv":
        df.to_csv(p, index=False)
    elif p.suffix.lower() in (".jsonl", ".json"):
        df.to_json(p, orient="records", lines=True, force_ascii=False)
    else:
        raise ConfigError(f"cannot write {p.name}: unknown table format",
                          hint="use a .csv or .jsonl file name")


@steer.command("vector")
@click.option("--model", "model", default="hf/smollm2", show_default=True,
              help="An hf/ model (folder or GGUF file).")
@click.option("--value", "values", multiple=True, required=True,
              help="Value(s) to make a direction for (repeatable).")
@click.option("--layers", default=None, help="Decoder layers, e.g. 10-15 (default: the "
              "model's middle band).")
@click.option("--source", type=click.Choice(["auto", "texts", "prompts", "both"]),
              default="auto", show_default=True,
              help="Seed VIDB texts, contrastive prompts we wrote, both, or auto (texts when "
              "the seed has enough).")
@click.option("--method", type=click.Choice(["mean_diff", "pca"]), default="mean_diff",
              show_default=True)
@click.option("--out", "out", type=click.Path(), required=True,
              help="A .safetensors file (one value) or a folder (several).")
def vector_cmd(model: str, values: tuple[str, ...], layers: str | None, source: str,
               method: str, out: str) -> None:
    """Make activation-steering vectors for an hf/ model and save them (safetensors)."""
    from valueflow.llm import get_backend
    from valueflow.steer import train_steering_vector
    from valueflow.steer._activation import hf_parts

    backend = get_backend(model.strip())
    hf_parts(backend)
    for v in values:
        vec = train_steering_vector(backend, v, layers=layers, source=source,  # type: ignore[arg-type]
                                    method=method)  # type: ignore[arg-type]
        dest = Path(out)
        if len(values) > 1 or dest.is_dir() or dest.suffix != ".safetensors":
            dest = dest / f"{vec.value.replace(':', '_')}.safetensors"
        vec.save(dest)
        click.echo(f"wrote {dest}: {vec.value} on {vec.model}, layers "
                   f"{vec.layers[0]}-{vec.layers[-1]}, {vec.n_pairs} contrastive examples")
