"""The local intensity scorer: an offline judge on HiVES embeddings, calibrated to VIDB's scale.

One *shared* model serves every value, so ~64 texts per value are enough: it is a ridge
regression over value-conditioned features of a text embedding ``e`` against the value's VIDB
texts (the "bank") and its definitions, plus a shared *valence* model:

* valence: a kernel ridge regression of intensity on the text's middle-layer features ``mid``
  (see :mod:`valueflow.embed._scorer_encoder`), kernel ``max(cos(mid_i, mid_j), 0) ** 6``, shared by all
  values. It is what tells "I abandoned my brother" from "I stood by my brother": the last-layer
  embedding mostly says what a text is about, the middle layers keep more of its stance. On the
  seed VIDB (grouped 5-fold CV) it lifted Spearman from 0.41 to 0.52 and sign accuracy on
  ``|y| >= 3`` from 0.71 to 0.75. Fitted on at most ``_KR_MAX`` texts (a seeded sample);
  training rows get exact leave-one-out valences, so the ridge on top sees honest inputs.

* a distance-weighted kNN mean of the intensities of the value's nearest bank texts;
* similarity to the value's most supporting, most opposing and neutral bank texts, their
  difference, and the largest similarity to any of its texts (relevance);
* similarity to the value's +2 and -2 steering phrasings and its judge definition;
* the valence, and products of it and of the above with relevance (an unrelated text should
  score near 0).

Texts of *other* values (not linked to the value by a cross-theory anchor) join the training
rows with target 0, since most real texts are unrelated to most values. A per-value linear
recalibration, shrunk toward the identity, follows. The 90 % interval is split-conformal: the
90 % quantile of out-of-fold absolute residuals from grouped cross-validation (folds by text),
per value, shrunk toward the pooled quantile; predictions with ``|intensity| >= 6``, which are
far more often right, use the quantile of their own residuals (pooled over values).

The scorer is trained on a VIDB (by default the seed VIDB written by the ValueFlow developers,
whose intensities are authored by hand, not measured judgments); its ``description`` says so.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.embed._model import HiVESModel
    from valueflow.theories import ValueNode

__all__ = ["LocalScorer", "cross_validate_scorer"]

FEATURES = ("knn", "sup_minus_opp", "sup", "opp", "neu", "rel", "proto", "defn",
            "knn_x_rel", "diff_x_rel", "proto_x_rel", "valence", "valence_x_rel")
_KR_POWER = 6
_KR_LAM = 0.5
_KR_MAX = 4000
_K = 10
_KNN_TAU = 0.05
_OFF_WEIGHT = 0.5
_CACHE_SIZE = 50_000
_STRONG = 6.0  # |prediction| from which the separate interval width applies
_MIN_STRONG = 30  # texts needed to estimate it


def _topk_mean(s: NDArray[Any], mask: NDArray[np.bool_], k: int = 3) -> NDArray[np.float64]:
    if not mask.any():
        return np.zeros(s.shape[0])
    sub = np.where(mask[None, :], s, -np.inf)
    k = min(k, int(mask.sum()))
    part = -np.partition(-sub, k - 1, axis=1)[:, :k]
    ok = np.isfinite(part)
    return np.where(ok, part, 0.0).sum(1) / np.maximum(ok.sum(1), 1)


def value_features(e: NDArray[Any], bank_e: NDArray[Any], bank_y: NDArray[Any],
                   proto: NDArray[Any], lin: NDArray[Any],
                   exclude: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
    """Feature rows (:data:`FEATURES`) of query embeddings ``e`` for one value.

    Args:
        e: ``(m, d)`` query embeddings.
        bank_e, bank_y: The value's VIDB embeddings ``(n, d)`` and intensities ``(n,)``.
        proto: ``(3, d)``: +2 phrasing, -2 phrasing, judge definition embeddings.
        lin: ``(m,)`` the shared valence model's prediction for each query (scaled /10).
        exclude: ``(m, n)`` True where a query must not see a bank row (itself).
    """
    s = e @ bank_e.T
    if exclude is not None:
        s = np.where(exclude, -np.inf, s)
    k = min(_K, s.shape[1])
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(s, idx, axis=1)
    finite = np.isfinite(top)  # a tiny bank minus the query itself leaves -inf entries
    top_max = np.max(np.where(finite, top, -2.0), axis=1, keepdims=True)
    w = np.where(finite, np.exp((np.where(finite, top, top_max) - top_max) / _KNN_TAU), 0.0)
    knn = (w * bank_y[idx]).sum(1) / np.maximum(w.sum(1), 1e-12)
    sup = _topk_mean(s, bank_y >= 1)
    opp = _topk_mean(s, bank_y <= -1)
    neu = _topk_mean(s, np.abs(bank_y) < 1, k=1)
    rel = np.max(np.where(np.isfinite(s), s, -1.0), axis=1)
    p = e @ proto.T
    prot = p[:, 0] - p[:, 1]
    diff = sup - opp
    return np.column_stack([knn / 10.0, diff, sup, opp, neu, rel, prot, p[:, 2],
                            knn / 10.0 * rel, diff * rel, prot * rel, lin, lin * rel])


def _valence_fit(mid: NDArray[Any], y: NDArray[Any], rng: np.random.Generator
                 ) -> tuple[dict[str, Any], NDArray[np.float64]]:
    """Kernel ridge of intensity on ``mid`` (kernel ``max(cos, 0) ** _KR_POWER``), shared by all values.

    Returns the model (training features ``x``, dual weights ``alpha``, offset ``mu``; at most
    ``_KR_MAX`` training rows, a seeded sample) and a valence for every row of ``mid``: the exact
    leave-one-out prediction (``y_i - r_i / (1 - h_ii)``) for training rows, the plain
    prediction (also out of sample) for the others.
    """
    n = len(y)
    sub = np.sort(rng.choice(n, _KR_MAX, replace=False)) if n > _KR_MAX else np.arange(n)
    x = np.asarray(mid[sub], dtype=np.float64)
    yy = np.asarray(y[sub], dtype=np.float64)
    k = np.maximum(x @ x.T, 0.0) ** _KR_POWER
    mu = float(yy.mean())
    inv = np.linalg.inv(k + _KR_LAM * np.eye(len(x)))
    alpha = inv @ (yy - mu)
    h = np.einsum("ij,ji->i", k, inv)
    state = {"x": x.astype(np.float32), "alpha": alpha, "mu": mu}
    out = _valence(state, mid)
    out[sub] = yy - (yy - (k @ alpha + mu)) / np.maximum(1.0 - h, 1e-6)
    return state, out


def _valence(state: dict[str, Any], mid: NDArray[Any]) -> NDArray[np.float64]:
    k = np.maximum(np.asarray(mid, dtype=np.float32) @ state["x"].T, 0.0
                   ).astype(np.float64) ** _KR_POWER
    return np.asarray(k @ state["alpha"] + state["mu"], dtype=np.float64)


def _ridge(x: NDArray[Any], y: NDArray[Any], w: NDArray[Any], lam: float) -> NDArray[np.float64]:
    xa = np.column_stack([np.ones(len(x)), x])
    reg = lam * np.eye(xa.shape[1])
    reg[0, 0] = 0.0
    xw = xa * w[:, None]
    return np.linalg.solve(xa.T @ xw + reg, xw.T @ y)


class LocalScorer:
    """Offline intensity scorer for any value with VIDB texts (implements ``DirectScorer``).

    Args:
        model: HiVES model giving the embeddings (default: the shipped one).
        lam: Ridge penalty of the shared model.
        shrink: Strength (in texts) of the shrinkage of per-value recalibration and
            per-value interval width toward the shared ones.
        folds: Folds of the grouped cross-validation behind the intervals.
        seed: Seed of the folds and of the off-value sample.

    Attributes (after :meth:`fit`): ``coef_``, ``mu_``, ``sd_``, ``calib_`` (per value
    ``(a, b)``), ``q90_`` (per value half-width), ``q90_pooled_``, ``q90_strong_`` (the
    half-width where ``|prediction| >= 6``), ``cv_`` (metrics),
    ``n_texts_``, ``values_``.
    """

    name = "local"

    def __init__(self, model: HiVESModel | None = None, lam: float = 1.0, shrink: float = 30.0,
                 folds: int = 5, seed: int = 0) -> None:
        self.model = model
        self.lam = lam
        self.shrink = shrink
        self.folds = folds
        self.seed = seed
        self.description = "local scorer (not fitted)"
        self._cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()

    # -- embeddings --------------------------------------------------------------------
    def _model(self) -> HiVESModel:
        if self.model is None:
            from valueflow.embed._model import load_hives

            self.model = load_hives()
        return self.model

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings ``e`` of ``texts``, each distinct text encoded once (LRU cache)."""
        return self._encode(texts)[0]

    def _encode(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``(e, mid)`` of ``texts`` from one encoder pass per distinct text (LRU cache of
        float16 rows ``[e, mid]``)."""
        from valueflow.embed._scorer_encoder import encode_for_scorer

        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            e, mid = encode_for_scorer(self._model(), missing)
            both = np.hstack([e, mid]).astype(np.float16)
            for t, v in zip(missing, both, strict=True):
                self._cache[t] = v
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        if not texts:
            d = self._model().dim
            return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
        rows = np.stack([self._cache[t] for t in texts]).astype(np.float32)
        d = rows.shape[1] // 2
        return rows[:, :d], rows[:, d:]

    # -- fitting -----------------------------------------------------------------------
    def _prototypes(self, values: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        from valueflow.theories import get_registry

        reg = get_registry()
        texts: list[str] = []
        for v in values:
            node = reg.get(v)
            texts += [node.phrasings.get(2, node.definition),
                      node.phrasings.get(-2, f"I reject {node.name}."),
                      node.judge_definition or node.definition]
        emb = self.embed(texts)
        return {v: emb[3 * i: 3 * i + 3] for i, v in enumerate(values)}

    def _rows(self, e: NDArray[Any], texts: NDArray[Any], values: NDArray[Any],
              y: NDArray[Any], bank: dict[str, tuple[NDArray[Any], NDArray[Any], NDArray[Any]]],
              protos: dict[str, NDArray[Any]], off: bool, rng: np.random.Generator,
              val: NDArray[Any]
              ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
        xs, ys, ws, vs = [], [], [], []
        linked = _linked_values()
        for v in sorted(set(values)):
            be, by, bt = bank[v]
            rows = np.flatnonzero(values == v)
            excl = texts[rows][:, None] == bt[None, :]
            xs.append(value_features(e[rows], be, by, protos[v], val[rows] / 10.0, excl))
            ys.append(y[rows])
            ws.append(np.ones(len(rows)))
            vs += [v] * len(rows)
            if off:
                cand = np.flatnonzero((values != v) & ~np.isin(values, list(linked.get(v, ()))))
                pick = rng.choice(cand, size=min(len(rows), len(cand)), replace=False)
                excl = texts[pick][:, None] == bt[None, :]
                xs.append(value_features(e[pick], be, by, protos[v], val[pick] / 10.0, excl))
                ys.append(np.zeros(len(pick)))
                ws.append(np.full(len(pick), _OFF_WEIGHT))
                vs += [v] * len(pick)
        return np.vstack(xs), np.concatenate(ys), np.concatenate(ws), np.array(vs)

    @staticmethod
    def _bank(e: NDArray[Any], texts: NDArray[Any], values: NDArray[Any], y: NDArray[Any]
              ) -> dict[str, tuple[NDArray[Any], NDArray[Any], NDArray[Any]]]:
        return {v: (e[values == v], y[values == v], texts[values == v]) for v in set(values)}

    def _fit_core(self, e: NDArray[Any], mid: NDArray[Any], texts: NDArray[Any],
                  values: NDArray[Any], y: NDArray[Any], protos: dict[str, NDArray[Any]],
                  rng: np.random.Generator) -> dict[str, Any]:
        bank = self._bank(e, texts, values, y)
        valence, val = _valence_fit(mid, y, rng)
        x, yy, w, vv = self._rows(e, texts, values, y, bank, protos, True, rng, val)
        mu, sd = x.mean(0), x.std(0) + 1e-8
        coef = _ridge((x - mu) / sd, yy, w, self.lam)
        pred = np.column_stack([np.ones(len(x)), (x - mu) / sd]) @ coef
        calib = {}
        for v in set(vv):
            m = vv == v
            # Per-value y ≈ a + b·pred, shrunk toward (0, 1).
            xa = np.column_stack([np.ones(m.sum()), pred[m]]) * np.sqrt(w[m])[:, None]
            r = (yy[m] - pred[m]) * np.sqrt(w[m])
            delta = np.linalg.solve(xa.T @ xa + self.shrink * np.diag([1.0, 100.0]), xa.T @ r)
            calib[v] = (float(delta[0]), float(1.0 + delta[1]))
        return {"bank": bank, "mu": mu, "sd": sd, "coef": coef, "calib": calib, "valence": valence}

    def _predict_core(self, state: dict[str, Any], e: NDArray[Any], mid: NDArray[Any], v: str,
                      proto: NDArray[Any], texts: NDArray[Any] | None = None) -> NDArray[Any]:
        be, by, bt = state["bank"][v]
        excl = None if texts is None else texts[:, None] == bt[None, :]
        lin = _valence(state["valence"], mid) / 10.0
        x = (value_features(e, be, by, proto, lin, excl) - state["mu"]) / state["sd"]
        pred = np.column_stack([np.ones(len(x)), x]) @ state["coef"]
        a, b = state["calib"].get(v, (0.0, 1.0))
        return np.clip(a + b * pred, -10.0, 10.0)

    def fit(self, vidb: pd.DataFrame) -> LocalScorer:
        """Fit on a VIDB (``text``, ``value``, ``intensity``); computes CV metrics and intervals."""
        for col in ("text", "value", "intensity"):
            if col not in vidb.columns:
                raise DataError(f"the VIDB has no {col!r} column",
                                hint="a VIDB needs text, value and intensity columns")
        if len(vidb) == 0:
            raise DataError("the VIDB is empty", hint="import texts or use the seed VIDB")
        texts = vidb["text"].astype(str).to_numpy()
        values = vidb["value"].astype(str).to_numpy()
        y = vidb["intensity"].to_numpy(dtype=float)
        e, mid = self._encode(list(texts))
        self.values_ = tuple(sorted(set(values)))
        self._protos = self._prototypes(self.values_)
        oof = cross_validate_scorer(self, e, texts, values, y, mid)
        self.cv_ = _metrics(y, oof)
        self.cv_by_value_ = {v: _metrics(y[values == v], oof[values == v])
                             for v in self.values_}
        res = np.abs(y - oof)
        # Strong predictions are much more often right (seed CV: 90 % of residuals below
        # ~3.3 where |prediction| >= 6, against ~7.7 elsewhere), so they get their own
        # conformal quantile (Mondrian split by |prediction|), pooled over values.
        strong = np.abs(oof) >= _STRONG
        self.q90_strong_ = (_conformal_q(res[strong]) if strong.sum() >= _MIN_STRONG
                            else float("nan"))
        res = res[~strong]
        values_w = values[~strong]
        self.q90_pooled_ = _conformal_q(res)
        self.q90_ = {}
        for v in self.values_:
            r = res[values_w == v]
            n = len(r)
            self.q90_[v] = float((n * _conformal_q(r) + self.shrink * self.q90_pooled_) /
                                 (n + self.shrink))
        self._state = self._fit_core(e, mid, texts, values, y, self._protos,
                                     np.random.default_rng(self.seed))
        self.coef_ = self._state["coef"]
        self.mu_, self.sd_ = self._state["mu"], self._state["sd"]
        self.calib_ = self._state["calib"]
        self.n_texts_ = len(vidb)
        src = set(vidb["source"].dropna().astype(str)) if "source" in vidb.columns else set()
        what = ("the ValueFlow seed VIDB ({n} texts written by the developers, with authored "
                "intensities), not on measured judgments" if src <= {"valueflow-seed"}
                else "a VIDB of {n} texts (sources: " + ", ".join(sorted(src))[:200] + ")")
        self.description = (
            f"local scorer: ridge over kNN/similarity features and a kernel valence model of "
            f"middle-layer features ({self._model().name} encoder), "
            f"trained on {what.format(n=len(vidb))}; grouped {self.folds}-fold CV: Spearman "
            f"{self.cv_['spearman']:.2f}, Pearson {self.cv_['pearson']:.2f}, RMSE "
            f"{self.cv_['rmse']:.2f}, sign accuracy {self.cv_['sign_acc']:.2f}, 90% interval "
            f"half-width {self.q90_pooled_:.1f}"
            + (f" ({self.q90_strong_:.1f} where |intensity| >= {_STRONG:g})"
               if np.isfinite(self.q90_strong_) and self.q90_strong_ < self.q90_pooled_ else ""))
        return self

    # -- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state` needs, apart from the VIDB itself (JSON-able)."""
        st = self._state
        return {"coef": st["coef"].tolist(), "mu": st["mu"].tolist(), "sd": st["sd"].tolist(),
                "calib": st["calib"], "valence_alpha": st["valence"]["alpha"].tolist(),
                "valence_mu": st["valence"]["mu"], "q90": self.q90_,
                "q90_pooled": self.q90_pooled_, "q90_strong": self.q90_strong_,
                "cv": self.cv_, "cv_by_value": self.cv_by_value_,
                "n_texts": self.n_texts_, "description": self.description,
                "params": {"lam": self.lam, "shrink": self.shrink, "folds": self.folds,
                           "seed": self.seed}}

    def load_state(self, state: dict[str, Any], vidb: pd.DataFrame) -> LocalScorer:
        """Restore a fitted scorer from :meth:`state_dict` and the VIDB it was fitted on."""
        texts = vidb["text"].astype(str).to_numpy()
        values = vidb["value"].astype(str).to_numpy()
        y = vidb["intensity"].to_numpy(dtype=float)
        e, mid = self._encode(list(texts))
        alpha = np.asarray(state["valence_alpha"], dtype=np.float64)
        if len(alpha) != len(texts):
            raise DataError("the scorer state does not match this VIDB",
                            hint="refit with load_local_scorer(vidb=...)")
        self.values_ = tuple(sorted(set(values)))
        self._protos = self._prototypes(self.values_)
        valence = {"x": mid.astype(np.float32), "alpha": alpha, "mu": float(state["valence_mu"])}
        self._state = {"bank": self._bank(e, texts, values, y), "mu": np.array(state["mu"]),
                       "sd": np.array(state["sd"]), "coef": np.array(state["coef"]),
                       "calib": {k: tuple(v) for k, v in state["calib"].items()},
                       "valence": valence}
        self.coef_, self.mu_, self.sd_ = (self._state["coef"], self._state["mu"],
                                          self._state["sd"])
        self.calib_ = self._state["calib"]
        self.q90_, self.q90_pooled_ = dict(state["q90"]), float(state["q90_pooled"])
        self.q90_strong_ = float(state.get("q90_strong", float("nan")))
        self.cv_, self.cv_by_value_ = state["cv"], state.get("cv_by_value", {})
        self.n_texts_ = int(state["n_texts"])
        self.description = str(state["description"])
        return self

    # -- DirectScorer ------------------------------------------------------------------
    def score(self, texts: Sequence[str], value: ValueNode | str) -> NDArray[np.float64]:
        """``(n, 3)``: mean intensity and a 90 % interval (low, high) in [-10, 10]."""
        vid = value if isinstance(value, str) else value.id
        if not hasattr(self, "_state"):
            raise DataError("the local scorer is not fitted", hint="call fit(vidb) first")
        if vid not in self._state["bank"]:
            from valueflow.errors import UnknownNameError
            from valueflow.theories import resolve_value

            with contextlib.suppress(UnknownNameError):
                vid = resolve_value(vid).id  # a bare name or alias: "benevolence", "care/harm"
        if vid not in self._state["bank"]:
            from valueflow.errors import UnknownNameError, close_matches

            hits = close_matches(vid, self.values_)
            raise UnknownNameError(f"the local scorer has no VIDB texts for {vid!r}",
                                   f"did you mean {', '.join(hits)}?" if hits else
                                   "add texts for this value to the VIDB and refit")
        texts = list(texts)
        if not texts:
            return np.zeros((0, 3))
        e, mid = self._encode(texts)
        mean = self._predict_core(self._state, e, mid, vid, self._protos[vid])
        q = np.full(len(mean), self.q90_.get(vid, self.q90_pooled_))
        if np.isfinite(self.q90_strong_):
            q = np.where(np.abs(mean) >= _STRONG, np.minimum(q, self.q90_strong_), q)
        return np.column_stack([mean, np.clip(mean - q, -10, 10), np.clip(mean + q, -10, 10)])


def _linked_values() -> dict[str, set[str]]:
    """Values linked to each value through a cross-theory anchor (their texts are not 0s)."""
    from valueflow.theories import get_registry

    reg = get_registry()
    out: dict[str, set[str]] = {}
    for a in reg.anchors:
        vals = set()
        for m in a.members:
            node = reg.get(m)
            theory = reg.theory_of(node)
            vals |= {n.id for n in theory.path(node.id)}
        for v in vals:
            out.setdefault(v, set()).update(vals - {v})
    return out


def _conformal_q(res: NDArray[Any], level: float = 0.9) -> float:
    n = len(res)
    if n == 0:
        return 10.0
    k = min(n, int(np.ceil((n + 1) * level)))
    return float(np.sort(res)[k - 1])


def _metrics(y: NDArray[Any], pred: NDArray[Any]) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    ok = len(y) > 2 and np.std(y) > 0 and np.std(pred) > 0
    directional = np.abs(y) >= 1
    strong = np.abs(y) >= 3
    return {
        "n": float(len(y)),
        "pearson": float(pearsonr(y, pred)[0]) if ok else float("nan"),
        "spearman": float(spearmanr(y, pred)[0]) if ok else float("nan"),
        "rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
        "sign_acc": float(np.mean(np.sign(pred[directional]) == np.sign(y[directional])))
        if directional.any() else float("nan"),
        "sign_acc3": float(np.mean(np.sign(pred[strong]) == np.sign(y[strong])))
        if strong.any() else float("nan"),
    }


def cross_validate_scorer(scorer: LocalScorer, e: NDArray[Any], texts: NDArray[Any],
                          values: NDArray[Any], y: NDArray[Any],
                          mid: NDArray[Any] | None = None) -> NDArray[np.float64]:
    """Out-of-fold predictions from grouped K-fold CV (a text and its copies share a fold;
    held-out texts are removed from the kNN bank and the valence model's training rows).
    ``mid``: middle-layer features (default: ``e``)."""
    mid = e if mid is None else mid
    rng = np.random.default_rng(scorer.seed)
    uniq = np.array(sorted(set(texts)))
    fold_of = dict(zip(uniq, rng.permutation(len(uniq)) % scorer.folds, strict=True))
    fold = np.array([fold_of[t] for t in texts])
    oof = np.zeros(len(y))
    protos = scorer._protos
    for f in range(scorer.folds):
        tr, te = fold != f, fold == f
        state = scorer._fit_core(e[tr], mid[tr], texts[tr], values[tr], y[tr], protos, rng)
        for v in set(values[te]):
            rows = np.flatnonzero(te & (values == v))
            if v in state["bank"]:
                oof[rows] = scorer._predict_core(state, e[rows], mid[rows], v, protos[v])
    return oof
