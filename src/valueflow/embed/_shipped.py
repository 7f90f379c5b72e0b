"""The shipped local judge and HiVES model, refits on a user's VIDB, and their cache.

``data/hives-minilm/`` holds the fine-tuned encoder (``adapter.safetensors``: LoRA adapters for
the bundled MiniLM, see ``_lora``/``_finetune``), the value heads (``heads.npz``) and
``judge.json`` (interval widths calibrated out of register, the description with what it was
trained on and its validity figures) and ``relevance.npz`` (the relevance heads, fitted on the
seed with :func:`write_shipped_relevance`). ``load_hives()`` and ``load_local_scorer()`` read it;
nothing is trained or encoded at start-up.

A VIDB of the user's refits the heads of its values (``ValueJudge.refit``); refits are cached
on disk by content under :func:`scorer_cache_dir`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.embed._judge import RELEVANCE_FLOOR, Calibration, RelevanceHeads, ValueJudge
from valueflow.embed._model import HiVESModel, default_model_dir, load_hives
from valueflow.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JUDGE_FILE", "RELEVANCE_FILE", "load_judge_dir", "load_local_scorer",
           "scorer_cache_dir", "scorer_training_frame", "texts_hash", "write_shipped_judge",
           "write_shipped_relevance"]

#: Bump when a change to the judge makes refits cached on disk stale.
SCORER_VERSION = "6"
CACHE_DIR_ENV = "VALUEFLOW_CACHE_DIR"
JUDGE_FILE = "judge.json"
RELEVANCE_FILE = "relevance.npz"
_SEED_SOURCE = "valueflow-seed"


def texts_hash(texts: list[str]) -> str:
    """A short hash of an ordered list of texts."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def load_judge_dir(folder: str | Path) -> ValueJudge:
    """The judge of a model folder written by ``finetune_encoder`` (and, for the shipped one,
    :func:`write_shipped_judge`): its encoder, value heads and interval widths."""
    from valueflow.embed._finetune import HEADS_FILE

    path = Path(folder)
    if not (path / HEADS_FILE).is_file():
        raise ConfigError(f"{path} has no value heads ({HEADS_FILE})",
                          hint="train a judge with `valueflow hives train --mode lora --out DIR`")
    with np.load(path / HEADS_FILE) as z:
        W, b, values = np.asarray(z["W"]), np.asarray(z["b"]), [str(v) for v in z["values"]]
    info: dict[str, Any] = {}
    if (path / JUDGE_FILE).is_file():
        info = json.loads((path / JUDGE_FILE).read_text(encoding="utf-8"))
    widths = info.get("widths") or {"*": [8.0, 8.0, 8.0]}
    meta = json.loads((path / "hives.json").read_text(encoding="utf-8")) if (
        path / "hives.json").is_file() else {}
    desc = info.get("description") or (
        f"local judge: value heads on a fine-tuned MiniLM ({path.name}), trained on "
        f"{meta.get('n_train_texts', '?')} VIDB texts; intervals not calibrated")
    cal = Calibration.from_json(info["calibration"]) if info.get("calibration") else None
    rel = _read_relevance(path / RELEVANCE_FILE)
    if rel is not None:
        desc += ("; relevance heads (seed and everyday value-free texts) shrink the intensity "
                 "of texts that say nothing about a value toward 0")
    return ValueJudge(load_hives(path), W, b, values, widths, desc, cal, rel)


def _read_relevance(path: Path) -> RelevanceHeads | None:
    if not path.is_file():
        return None
    with np.load(path) as z:
        return RelevanceHeads(np.asarray(z["W"], np.float64), np.asarray(z["b"], np.float64),
                              tuple(str(v) for v in z["values"]))


def _save_relevance(path: Path, heads: RelevanceHeads, **extra: Any) -> None:
    np.savez_compressed(path, W=heads.W.astype(np.float32), b=heads.b.astype(np.float32),
                        values=np.array(heads.values), **extra)


@lru_cache(maxsize=1)
def _default_judge() -> ValueJudge:
    return load_judge_dir(default_model_dir())


def scorer_cache_dir() -> Path:
    """Where fitted local scorers are cached: ``$VALUEFLOW_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/valueflow`` (``~/.cache/valueflow``)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "valueflow"


def _quantile_sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows evenly spaced over ``frame`` sorted by intensity (keeps the distribution;
    deterministic)."""
    if len(frame) <= n:
        return frame
    ordered = frame.sort_values(["intensity", "text"], kind="stable")
    return ordered.iloc[np.unique(np.linspace(0, len(frame) - 1, n).round().astype(int))]


def scorer_training_frame(vidb: pd.DataFrame, *, add_seed: bool = True,
                          values: list[str] | None = None, max_texts: int = 10_000,
                          off_value_texts: int = 150) -> pd.DataFrame:
    """The texts a local scorer refit on ``vidb`` learns from.

    ``vidb``'s texts for every value it has; with ``add_seed``, the seed VIDB's texts for
    the values it lacks, so those values stay scorable and every value sees off-value texts.
    A large VIDB is sampled (evenly over each value's intensities) to about ``max_texts``:
    the ``values`` to be scored share the budget (at least 500 texts each), the others keep
    ``off_value_texts`` each as negatives; without ``values`` all values share it.
    """
    import pandas as pd

    from valueflow.tables import require_columns
    from valueflow.vidb import load_seed

    require_columns(vidb, ["text", "value", "intensity"], source="the VIDB")
    cols = ["text", "value", "intensity", "source"]
    frame = vidb.assign(source=vidb["source"] if "source" in vidb.columns else "VIDB table")
    frame = frame[cols].dropna(subset=["text", "value", "intensity"])
    frame = frame[frame["text"].astype(str).str.strip() != ""]
    frame = frame.drop_duplicates(subset=["value", "text"], keep="first")
    if add_seed:
        seed = load_seed()
        seed = seed.assign(source=seed["source"].fillna(_SEED_SOURCE))[cols]
        extra = seed[~seed["value"].isin(set(frame["value"]))]
        frame = pd.concat([frame, extra], ignore_index=True)
    if len(frame) > max_texts:
        from valueflow.theories import resolve_value

        focus = {resolve_value(v).id for v in values} if values else set(frame["value"])
        n_off = frame["value"].nunique() - len(focus & set(frame["value"]))
        per = max(500, (max_texts - off_value_texts * n_off) // max(1, len(focus)))
        parts = [_quantile_sample(g, per if v in focus else off_value_texts)
                 for v, g in frame.groupby("value", sort=True)]
        frame = pd.concat(parts, ignore_index=True)
    return frame.reset_index(drop=True)


def _fit_key(enc: HiVESModel, frame: pd.DataFrame, fit_values: list[str]) -> str:
    h = hashlib.sha256(f"{SCORER_VERSION}\0{enc.name}\0{enc.base}\0{enc.adapter}\0".encode())
    if enc.adapter and Path(enc.adapter).is_file():
        h.update(hashlib.sha256(Path(enc.adapter).read_bytes()).digest())
    rel = Path(enc.adapter).parent / RELEVANCE_FILE if enc.adapter else None
    if rel is not None and rel.is_file():
        h.update(hashlib.sha256(rel.read_bytes()).digest())
    h.update(("\x1f".join(fit_values) + "\0").encode())
    for t, v, y in zip(frame["text"].astype(str), frame["value"].astype(str),
                       frame["intensity"].astype(float), strict=True):
        h.update(f"{v}\x1f{y!r}\x1f{t}\0".encode())
    return h.hexdigest()[:24]


def _is_seed(frame: pd.DataFrame) -> bool:
    from valueflow.vidb import load_seed

    if "source" in frame.columns and not set(frame["source"].dropna().astype(str)) <= {
            _SEED_SOURCE}:
        return False
    seed = load_seed()
    return len(frame) == len(seed) and set(zip(frame["value"], frame["text"], strict=True)) == set(
        zip(seed["value"], seed["text"], strict=True))


_FITTED: dict[tuple[str, str], ValueJudge] = {}


def _refit_cached(base: ValueJudge, frame: pd.DataFrame, fit_values: list[str],
                  folder: Path | None) -> ValueJudge:
    key = _fit_key(base.model, frame, fit_values)
    memo = (key, str(folder))
    if memo in _FITTED:
        return _FITTED[memo]
    where = folder / f"local-judge-{key}.npz" if folder is not None else None
    judge: ValueJudge | None = None
    if where is not None and where.is_file():
        try:
            with np.load(where) as z:
                info = json.loads(str(z["info"]))
                cal = info.get("calibration")
                rel = (RelevanceHeads(np.asarray(z["rW"]), np.asarray(z["rb"]),
                                      tuple(str(v) for v in z["rvalues"]))
                       if "rW" in z.files else None)
                judge = ValueJudge(base.model, np.asarray(z["W"]), np.asarray(z["b"]),
                                   [str(v) for v in z["values"]], info["widths"],
                                   info["description"],
                                   Calibration.from_json(cal) if cal else None, rel,
                                   float(info.get("floor", RELEVANCE_FLOOR)))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            judge = None  # a damaged cache entry: refit and overwrite it
    if judge is None:
        if sys.stderr.isatty():
            print(f"fitting the local judge's heads on {len(frame)} VIDB texts (cached for "
                  "next time)...", file=sys.stderr, flush=True)
        judge = base.refit(frame, values=fit_values)
        if where is not None:
            try:
                where.parent.mkdir(parents=True, exist_ok=True)
                tmp = where.with_name(f"{where.stem}.{os.getpid()}.tmp.npz")
                info = json.dumps({"widths": judge.widths, "description": judge.description,
                                   "floor": judge.floor,
                                   "calibration": judge.calibration.to_json()
                                   if judge.calibration is not None else None})
                rh = judge.relevance_heads
                more: dict[str, Any] = ({"rW": rh.W, "rb": rh.b,
                                         "rvalues": np.array(rh.values)} if rh is not None else {})
                np.savez_compressed(tmp, W=judge.W, b=judge.b, values=np.array(judge.values_),
                                    info=np.array(info), **more)
                os.replace(tmp, where)
            except OSError:
                pass  # an unwritable cache only costs the refit next time
    while len(_FITTED) >= 4:
        _FITTED.pop(next(iter(_FITTED)))
    _FITTED[memo] = judge
    return judge


def load_local_scorer(path: str | Path | None = None, *, vidb: pd.DataFrame | str | None = None,
                      model: HiVESModel | str | None = None, add_seed: bool = True,
                      values: list[str] | None = None, max_texts: int = 10_000,
                      cache_dir: str | Path | None = None) -> ValueJudge:
    """The local intensity judge (a ``DirectScorer``).

    Args:
        path: A judge folder other than the shipped one (written by ``finetune_encoder``).
        vidb: Refit the heads of this VIDB's values on its texts (a frame, ``"workspace"``,
            ``"seed"`` or a file or folder path); the other values keep the shipped heads.
            Refits are cached on disk by content (see :func:`scorer_cache_dir`): the first one
            encodes the VIDB's texts (a few hundred texts/s on 2 CPU cores), later loads take
            about a second.
        model: Use this encoder instead (``"base"`` for the bundled MiniLM without the
            adapter, or a HiVES model folder); its heads are fitted on the seed VIDB (or on
            ``vidb``).
        add_seed: With ``vidb``: the seed VIDB's texts of other values join the refit as
            texts that say nothing about the refitted values (see :func:`scorer_training_frame`).
        values, max_texts: With a ``vidb`` larger than ``max_texts``: the values that will
            be scored, which keep most of the sample.
        cache_dir: Folder of the refit cache (default :func:`scorer_cache_dir`).

    Returns:
        A judge; its ``description`` says what it was trained on.
    """
    base = load_judge_dir(path) if path is not None else _default_judge()
    if model is not None:
        enc = model if isinstance(model, HiVESModel) else load_hives(model)
        base = ValueJudge.untrained(enc)
        if vidb is None:
            vidb = "seed"
    if vidb is None:
        return base
    if isinstance(vidb, str):
        from valueflow.vidb import load_vidb

        vidb = load_vidb(vidb)
    frame = scorer_training_frame(vidb, add_seed=add_seed, values=values, max_texts=max_texts)
    if model is None and _is_seed(frame):
        return base
    own = set(vidb["value"].astype(str))
    fit_values = sorted(own if model is None else set(frame["value"].astype(str)))
    folder = Path(cache_dir) if cache_dir is not None else scorer_cache_dir()
    return _refit_cached(base, frame, fit_values, folder)


def write_shipped_judge(model_dir: str | Path, *, calibration: str | Path | None = None,
                        validity: dict[str, Any] | None = None,
                        out: str | Path | None = None,
                        calibrated_on: str = "registers it never saw (register-held-out, "
                                             "seed texts)") -> Path:
    """Copy a fine-tuned model folder into the package as the shipped HiVES model and local
    judge (developers), with interval widths from out-of-register predictions.

    Args:
        model_dir: Folder written by ``finetune_encoder`` (trained on
            :func:`valueflow.vidb._seed.judge_training_frame`).
        calibration: ``predictions.csv`` of ``benchmarks/bench_register_heldout.py`` (columns
            ``judge``, ``register``, ``value``, ``intensity``, ``pred``): the residuals of
            models that never saw the texts' registers. Without it the widths are wide (8).
        validity: Figures from ``benchmarks/bench_validity.py`` to state in the description.
        calibrated_on: What the calibration predictions are, for the description.
        out: Target folder (default: the package's ``data/hives-minilm``).
    """
    import shutil

    import pandas as pd

    from valueflow.embed._finetune import ADAPTER_FILE, HEADS_FILE
    from valueflow.embed._judge import conformal_widths, fit_calibration
    from valueflow.vidb._seed import judge_training_frame

    src = Path(model_dir)
    dst = Path(out) if out is not None else default_model_dir()
    dst.mkdir(parents=True, exist_ok=True)
    meta = json.loads((src / "hives.json").read_text(encoding="utf-8"))
    if src.resolve() != dst.resolve():
        for name in (ADAPTER_FILE, HEADS_FILE, "hives.json"):
            shutil.copyfile(src / name, dst / name)
    widths: dict[str, list[float]] = {"*": [8.0, 8.0, 8.0]}
    heldout = ""
    cal: Calibration | None = None
    if calibration is not None:
        pred = pd.read_csv(calibration)
        pred = pred[pred["judge"] == "local"]
        y, raw = pred["intensity"].to_numpy(float), pred["pred"].to_numpy(float)
        with np.load(src / HEADS_FILE) as z:
            cal = fit_calibration(raw, y, [str(v) for v in z["values"]])
        p = cal(raw)
        widths = {"*": conformal_widths(y, p)}
        for v in sorted(set(pred["value"].astype(str))):
            m = (pred["value"] == v).to_numpy()
            if m.sum() >= 150:
                widths[v] = conformal_widths(y[m], p[m])
        from scipy.stats import spearmanr

        d = y != 0
        heldout = (f"; on {calibrated_on}, {len(y)} texts: "
                   f"Spearman {spearmanr(y, p)[0]:.2f}, sign accuracy "
                   f"{np.mean(np.sign(p[d]) == np.sign(y[d])):.2f}; raw outputs mapped to the "
                   f"mean intensity they had there (x{float(raw @ y) / float(raw @ raw):.1f} "
                   f"on average)")
    train = judge_training_frame()
    in_seed = train["source"].eq("valueflow-seed")
    n_seed = int(in_seed.sum())
    n_pairs = int((~in_seed).sum()) // 2  # stance pairs, when the recipe trains on them
    real = ""
    if validity:
        real = "; on human-made data we did not write: " + ", ".join(
            f"{k} {v}" for k, v in validity.items())
    stance = train.loc[~in_seed, "value"].nunique()
    config = meta.get("config") or {}
    paired = (f"; its {int(train.loc[in_seed, 'pair'].notna().sum())} paired texts (the same "
              f"situation, opposite stance) also taught stance by a pairwise loss"
              if config.get("pair_weight", 0) > 0 else "")
    if config.get("rank_weight", 0) > 0:
        paired += ("; texts of one value were also trained to come out in the order of their "
                   "intensities (a pairwise ranking loss)")
    with_pairs = (f" and {n_pairs} minimal pairs on stance (negation, refusal, approval or "
                  f"regret, sarcasm) for {stance} values" if n_pairs else "")
    n_avg = len(meta.get("averaged_from") or ())
    averaged = (f" (the weight average of {n_avg} fine-tunings of one recipe with different "
                f"seeds)" if n_avg else "")
    desc = (f"local judge: value heads on the bundled MiniLM fine-tuned with LoRA adapters"
            f"{averaged}, "
            f"trained on the ValueFlow seed VIDB ({n_seed} texts written by the developers "
            f"in 12 registers, with authored intensities, not measured judgments{paired})"
            f"{with_pairs}{heldout}{real}")
    info = {"widths": widths, "calibration": cal.to_json() if cal is not None else None,
            "description": desc, "seed_hash": texts_hash(train["text"].astype(str).tolist()),
            "validity": validity or {}}
    (dst / JUDGE_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    (dst / "head.npz").unlink(missing_ok=True)  # the head-on-frozen-features model it replaces
    _default_judge.cache_clear()
    return dst


def write_shipped_relevance(folder: str | Path | None = None, *, lam: float = 10.0,
                            none_weight: float = 30.0) -> Path:
    """Fit the relevance heads of the judge in ``folder`` (default: the shipped one) on what
    the judge was trained on (:func:`valueflow.vidb._seed.judge_training_frame`) and the
    everyday value-free texts (:func:`valueflow.vidb._seed.load_neutral_texts`, each counting
    ``none_weight`` rows) and write them there as ``relevance.npz`` (developers; a few minutes
    on a 2-core CPU: it encodes the seed once). The hashes of both are stored with them, so a
    test fails while they are stale."""
    from valueflow.vidb._seed import judge_training_frame, load_neutral_texts

    path = Path(folder) if folder is not None else default_model_dir()
    judge = load_judge_dir(path)
    seed = judge_training_frame()
    texts = seed["text"].astype(str).tolist()
    neutral = load_neutral_texts()["text"].astype(str).tolist()
    z = judge.embed(texts + neutral).astype(np.float64)
    # the everyday texts belong to no value: irrelevant to every head
    heads = RelevanceHeads.fit(z, texts + neutral,
                               seed["value"].astype(str).tolist() + [""] * len(neutral),
                               np.concatenate([seed["intensity"].to_numpy(float),
                                               np.zeros(len(neutral))]),
                               list(judge.values_), lam, none_weight)
    _save_relevance(path / RELEVANCE_FILE, heads, seed_hash=np.array(texts_hash(texts)),
                    neutral_hash=np.array(texts_hash(neutral)))
    _default_judge.cache_clear()
    return path / RELEVANCE_FILE
