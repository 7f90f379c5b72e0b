"""The local judge: value heads on the fine-tuned encoder (``--judge local``).

The encoder is the bundled MiniLM with the shipped LoRA adapter (see ``_finetune``); a value's
intensity is ``10 · (w_v · z + b_v)`` on the L2-normalised embedding ``z``, clipped to
[-10, 10]. One encoder pass per text serves all values.

The shipped heads' raw outputs are cautious on text unlike their training registers (about a
third of the intensities they track), so they pass through a monotone :class:`Calibration`
fitted on register-held-out predictions: the mean intensity texts with that raw output had in
registers the model never saw. Ranks and signs within a value are unchanged.

Intervals are split-conformal: the 90 % quantile of absolute residuals measured on texts of
registers the model did *not* train on (register-held-out runs recorded with the model), split
by the size of the prediction (Mondrian: strong predictions are more often right).

Every value also has a *relevance* head: the probability that a text says something about
the value at all (logistic, on the same embedding; trained on the value's own texts with
|intensity| >= 2 against texts of values that share no cross-theory anchor with it and the
value's own neutral texts). A text the head finds irrelevant has its intensity shrunk toward 0
(``intensity · min(1, p / RELEVANCE_FLOOR)``): without it, a recipe or a timetable got
intensities of ±3 to ±5 on values it says nothing about. The relevance is also an output
(:meth:`ValueJudge.relevance`) for profiles, which weigh a text's evidence on a value by it.

A VIDB of the user's (``--vidb``) refits the heads of its values by ridge regression on the
fine-tuned embeddings (closed form: seconds to minutes on a CPU, cached by content); the other
values keep the shipped heads. The refit's intervals come from grouped K-fold residuals of that
ridge.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.embed._model import HiVESModel
    from valueflow.theories import ValueNode

__all__ = ["RELEVANCE_FLOOR", "STRENGTH_EDGES", "Calibration", "RelevanceHeads", "ValueJudge",
           "conformal_widths", "fit_calibration", "logistic_heads", "relevance_labels",
           "ridge_heads"]

#: |prediction| edges of the interval-width strata.
STRENGTH_EDGES = (3.0, 6.0)
_CACHE_SIZE = 50_000
#: Relevance below which a value's intensity is shrunk toward 0 (``min(1, p / floor)``).
RELEVANCE_FLOOR = 0.5


def _stratum(pred: NDArray[Any]) -> NDArray[np.int64]:
    return np.searchsorted(np.asarray(STRENGTH_EDGES), np.abs(pred), side="right")


def conformal_widths(y: NDArray[Any], pred: NDArray[Any], level: float = 0.9,
                     min_n: int = 30) -> list[float]:
    """Split-conformal half-widths per |prediction| stratum (see :data:`STRENGTH_EDGES`);
    a stratum with fewer than ``min_n`` residuals takes the pooled width."""
    from valueflow.embed._scorer import _conformal_q

    res = np.abs(np.asarray(y, float) - np.asarray(pred, float))
    pooled = _conformal_q(res, level)
    strata = _stratum(np.asarray(pred, float))
    return [(_conformal_q(res[strata == s], level) if (strata == s).sum() >= min_n else pooled)
            for s in range(len(STRENGTH_EDGES) + 1)]


@dataclass(frozen=True)
class Calibration:
    """A monotone map from a head's raw intensity to a calibrated one, for some values.

    Piecewise linear through the knots ``(x, y)``; beyond the outer knots it continues with
    ``slope``; the result is clipped to [-10, 10].
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    slope: float
    values: frozenset[str] = field(default_factory=frozenset)
    """Value ids whose heads it applies to (heads refitted on a user's VIDB are not)."""

    def __call__(self, raw: NDArray[Any]) -> NDArray[np.float64]:
        r = np.asarray(raw, float)
        x, y = np.asarray(self.x), np.asarray(self.y)
        out = np.interp(r, x, y)
        out = np.where(r < x[0], y[0] + self.slope * (r - x[0]), out)
        out = np.where(r > x[-1], y[-1] + self.slope * (r - x[-1]), out)
        return np.clip(out, -10.0, 10.0)

    def without(self, values: Sequence[str]) -> Calibration:
        """The same map, no longer applied to ``values``."""
        return Calibration(self.x, self.y, self.slope, self.values - set(values))

    def to_json(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y), "slope": self.slope,
                "values": sorted(self.values)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Calibration:
        return cls(tuple(map(float, d["x"])), tuple(map(float, d["y"])), float(d["slope"]),
                   frozenset(map(str, d.get("values", ()))))


def fit_calibration(raw: NDArray[Any], intensity: NDArray[Any], values: Sequence[str] = (),
                    bins: int = 20, tail_slope: float = 1.0) -> Calibration:
    """The calibration of raw head outputs ``raw`` against true ``intensity`` (texts the
    model did not train on): mean intensity in ``bins`` equal-count bins of the raw output,
    made increasing by isotonic regression (weighted by bin size) and strictly increasing by
    a tiny step, so texts keep their order. Beyond the outermost bins, where the data say
    little, raw differences carry over at ``tail_slope``."""
    from scipy.optimize import isotonic_regression

    r, t = np.asarray(raw, float), np.asarray(intensity, float)
    if len(r) < 2 * bins or np.ptp(r) <= 0:
        raise DataError(f"{len(r)} predictions are too few to calibrate {bins} bins",
                        hint=f"give at least {2 * bins} held-out predictions")
    order = np.argsort(r, kind="stable")
    parts = np.array_split(order, bins)
    xs = np.array([r[p].mean() for p in parts])
    ys = isotonic_regression(np.array([t[p].mean() for p in parts]),
                             weights=np.array([len(p) for p in parts], float)).x
    ys = ys + 1e-3 * np.arange(bins)
    keep = np.concatenate([[True], np.diff(xs) > 0])
    return Calibration(tuple(xs[keep]), tuple(ys[keep]), float(tail_slope), frozenset(values))


def ridge_heads(z: NDArray[Any], targets: NDArray[Any], weights: NDArray[Any], lam: float = 1.0
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-column weighted ridge of ``targets`` (n × k) on ``z`` (n × d), intercept unpenalised.

    Returns ``W`` (k × d) and ``b`` (k,).
    """
    n, d = z.shape
    xa = np.column_stack([np.ones(n), z])
    reg = lam * np.eye(d + 1)
    reg[0, 0] = 0.0
    coefs = np.zeros((targets.shape[1], d + 1))
    for j in range(targets.shape[1]):
        w = weights[:, j]
        xw = xa * w[:, None]
        coefs[j] = np.linalg.solve(xa.T @ xw + reg, xw.T @ targets[:, j])
    return coefs[:, 1:], coefs[:, 0]


def relevance_labels(row_values: Sequence[str], intensity: NDArray[Any], values: Sequence[str],
                     linked: dict[str, set[str]], *, on: float = 2.0, off: float = 1.0
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Targets ``Y`` and a mask ``M`` (``n × len(values)``) of the relevance heads.

    A row is relevant (1) to its own value when ``|intensity| >= on`` and irrelevant (0) to it
    when ``|intensity| < off``; rows between are left out (mask 0). Rows of other values are
    irrelevant (0), except for values linked to theirs by a cross-theory anchor (left out:
    a care/harm text may well be about benevolence). Rows that share a text are merged by the
    caller (a text relevant to a value through any row is relevant).
    """
    col = {v: i for i, v in enumerate(values)}
    n, k = len(row_values), len(values)
    y = np.zeros((n, k))
    m = np.ones((n, k))
    for i, v in enumerate(row_values):
        for other in linked.get(v, ()):
            if other in col:
                m[i, col[other]] = 0.0
        if v in col:
            a = abs(float(intensity[i]))
            y[i, col[v]] = 1.0 if a >= on else 0.0
            m[i, col[v]] = 1.0 if (a >= on or a < off) else 0.0
    return y, m


def logistic_heads(z: NDArray[Any], y: NDArray[Any], mask: NDArray[Any], lam: float = 10.0,
                   max_iter: int = 500, row_weight: NDArray[Any] | None = None
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-column L2-penalised logistic regression of ``y`` (``n × k``, 0/1) on ``z``, over
    the rows where ``mask`` is 1, with the two classes weighted equally (intercept
    unpenalised); ``row_weight`` (``n``) weighs rows within their class. Returns ``W``
    (``k × d``) and ``b`` (``k``)."""
    from scipy.optimize import minimize

    z = np.asarray(z, np.float64)
    n, d = z.shape
    xa = np.column_stack([np.ones(n), z])
    W = np.zeros((y.shape[1], d))
    b = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        m = np.asarray(mask[:, j]) > 0
        t = np.asarray(y[m, j], np.float64)
        pos, neg = t.sum(), (1 - t).sum()
        if pos == 0 or neg == 0:
            raise DataError(f"relevance head {j} has no {'relevant' if pos == 0 else 'other'} "
                            "texts", hint="each value needs texts about it and texts not")
        rw = np.ones(int(m.sum())) if row_weight is None else np.asarray(row_weight, float)[m]
        pos, neg = float(rw[t == 1].sum()), float(rw[t == 0].sum())
        w = rw * np.where(t == 1, 0.5 / pos, 0.5 / neg) * len(t)
        x = xa[m]

        def loss(beta: NDArray[np.float64], x: NDArray[Any] = x, t: NDArray[Any] = t,
                 w: NDArray[Any] = w) -> tuple[float, NDArray[np.float64]]:
            s = x @ beta
            # log(1 + e^s) - t·s, stable for large |s|
            nll = float((w * (np.logaddexp(0.0, s) - t * s)).sum())
            g = x.T @ (w * (1.0 / (1.0 + np.exp(-s)) - t))
            g[1:] += lam * beta[1:]
            return nll + 0.5 * lam * float(beta[1:] @ beta[1:]), g

        res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter})
        b[j], W[j] = res.x[0], res.x[1:]
    return W, b


@dataclass(frozen=True)
class RelevanceHeads:
    """Logistic heads: the probability that a text says something about each value."""

    W: NDArray[np.float64]
    b: NDArray[np.float64]
    values: tuple[str, ...]

    def __call__(self, z: NDArray[Any], rows: Sequence[int] | None = None
                 ) -> NDArray[np.float64]:
        """``n × len(values)`` probabilities for embeddings ``z`` (only the heads ``rows``,
        in that order, when given)."""
        W, b = (self.W, self.b) if rows is None else (self.W[list(rows)], self.b[list(rows)])
        s = np.asarray(z, np.float64) @ W.T + b
        return np.asarray(1.0 / (1.0 + np.exp(-s)), np.float64)

    def merged(self, other: RelevanceHeads) -> RelevanceHeads:
        """These heads with ``other``'s replacing or joining them."""
        names = list(self.values)
        W, b = self.W.copy(), self.b.copy()
        for j, v in enumerate(other.values):
            if v in names:
                i = names.index(v)
                W[i], b[i] = other.W[j], other.b[j]
            else:
                W = np.vstack([W, other.W[j][None, :]]) if len(W) else other.W[j][None, :]
                b = np.append(b, other.b[j])
                names.append(v)
        return RelevanceHeads(W, b, tuple(names))

    @classmethod
    def fit(cls, z: NDArray[Any], texts: Sequence[str], row_values: Sequence[str],
            intensity: NDArray[Any], values: Sequence[str], lam: float = 10.0,
            none_weight: float = 1.0) -> RelevanceHeads:
        """Heads for ``values`` from VIDB rows (``texts`` with embeddings ``z``, one per row).

        Rows whose value is ``""`` are texts about no value at all (everyday texts): every
        head learns them as irrelevant, each counting ``none_weight`` times a VIDB row (they
        are few beside the VIDB but stand for most of what people write)."""
        from valueflow.embed._scorer import _linked_values

        y, m = relevance_labels(row_values, intensity, values, _linked_values())
        # one row per distinct text: relevant if any of its rows is, left out if any row is
        # unsure and none relevant
        first: dict[str, int] = {}
        for i, t in enumerate(texts):
            j = first.setdefault(t, i)
            if j != i:
                y[j] = np.maximum(y[j], y[i])
                m[j] = np.where(y[j] > 0, 1.0, np.minimum(m[j], m[i]))
        rows = np.array(sorted(first.values()))
        y, m = y[rows], m[rows]
        # a value needs texts about it and texts of other values (its own weak texts alone
        # would teach strength, not topic): else no head, no gate
        rv = np.asarray(row_values)[rows]
        ok = [j for j, v in enumerate(values)
              if ((y[:, j] == 1) & (m[:, j] > 0)).any()
              and ((y[:, j] == 0) & (m[:, j] > 0) & (rv != v)).any()]
        rw = np.where(rv == "", float(none_weight), 1.0)
        W, b = logistic_heads(np.asarray(z)[rows], y[:, ok], m[:, ok], lam,
                              row_weight=rw) if ok else (
            np.zeros((0, np.asarray(z).shape[1])), np.zeros(0))
        return cls(W, b, tuple(str(values[j]) for j in ok))


class ValueJudge:
    """Offline intensity judge (implements ``DirectScorer``).

    Args:
        model: The fine-tuned encoder (a HiVES model of kind ``lora``).
        W, b: Value heads (``k × d``, ``k``) predicting intensity / 10.
        values: Canonical value id of each head.
        widths: Conformal 90 % half-widths per |prediction| stratum, pooled or per value
            (``{"*": [...], value: [...]}``).
        description: What it was trained on and how well it did.
        calibration: Monotone map of some heads' raw outputs (see :class:`Calibration`).
        relevance: Relevance heads (see :class:`RelevanceHeads`); values without one are
            not gated.
        floor: Relevance below which intensities shrink toward 0 (``min(1, p / floor)``).
    """

    name = "local"

    def __init__(self, model: HiVESModel, W: NDArray[Any], b: NDArray[Any],
                 values: Sequence[str], widths: dict[str, list[float]],
                 description: str, calibration: Calibration | None = None,
                 relevance: RelevanceHeads | None = None,
                 floor: float = RELEVANCE_FLOOR) -> None:
        if W.shape[0] != len(values) or b.shape != (len(values),):
            raise DataError("value heads do not match their values",
                            hint="the judge files are damaged; reinstall valueflow")
        self.model = model
        self.W = np.asarray(W, np.float64)
        self.b = np.asarray(b, np.float64)
        self.values_ = tuple(values)
        self._col = {v: i for i, v in enumerate(self.values_)}
        self.widths = widths
        self.description = description
        self.calibration = calibration
        self.relevance_heads = relevance
        self.floor = float(floor)
        self._rcol = {v: i for i, v in enumerate(relevance.values)} if relevance else {}
        self._cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()

    @property
    def version(self) -> str:
        """A short content hash of what decides the judge's numbers (encoder, heads,
        calibration, relevance heads and gate): stored scores keyed by it are never mixed
        with scores of a changed judge."""
        import hashlib
        import json

        h = hashlib.sha256()
        h.update(json.dumps([self.model.name, getattr(self.model, "base", None),
                             getattr(self.model, "adapter", None) and Path(
                                 str(self.model.adapter)).name, list(self.values_),
                             self.calibration.to_json() if self.calibration else None,
                             self.floor], default=str).encode())
        for a in (self.W, self.b):
            h.update(np.ascontiguousarray(a, np.float64).tobytes())
        if self.relevance_heads is not None:
            h.update(json.dumps(list(self.relevance_heads.values)).encode())
            for a in (self.relevance_heads.W, self.relevance_heads.b):
                h.update(np.ascontiguousarray(a, np.float64).tobytes())
        return h.hexdigest()[:8]

    @classmethod
    def untrained(cls, model: HiVESModel, description: str = "") -> ValueJudge:
        """A judge with no heads yet on ``model``'s embeddings: :meth:`refit` gives it some."""
        return cls(model, np.zeros((0, model.dim)), np.zeros(0), [], {"*": [10.0, 10.0, 10.0]},
                   description or f"value heads on {model.name}")

    # -- embeddings ----------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Fine-tuned embeddings of ``texts`` (each distinct text encoded once; LRU cache)."""
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            e = self.model.encode(missing)
            for t, row in zip(missing, e, strict=True):
                self._cache[t] = row
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.W.shape[1]), np.float32)
        return np.stack([self._cache[t] for t in texts])

    def _resolve(self, value: ValueNode | str) -> str:
        vid = value if isinstance(value, str) else value.id
        if vid not in self._col:
            from valueflow.errors import UnknownNameError
            from valueflow.theories import resolve_value

            with contextlib.suppress(UnknownNameError):
                vid = resolve_value(vid).id
        if vid not in self._col:
            from valueflow.errors import UnknownNameError, close_matches

            hits = close_matches(vid, self.values_)
            raise UnknownNameError(f"the local judge has no head for {vid!r}",
                                   f"did you mean {', '.join(hits)}?" if hits else
                                   "give a VIDB with texts for this value (--vidb) to fit one")
        return vid

    def _gate(self, z: NDArray[Any], values: Sequence[str]) -> NDArray[np.float64]:
        """``n × len(values)`` factors ``min(1, p / floor)`` (1 where a value has no head)."""
        g = np.ones((len(z), len(values)))
        if self.relevance_heads is None:
            return g
        have = [(i, self._rcol[v]) for i, v in enumerate(values) if v in self._rcol]
        if have:
            p = self.relevance_heads(z, [r for _, r in have])
            g[:, [i for i, _ in have]] = np.minimum(1.0, p / self.floor)
        return g

    def predict(self, z: NDArray[Any], value: str) -> NDArray[np.float64]:
        """Mean intensities of embeddings ``z`` for a canonical value id (relevance-gated)."""
        j = self._col[value]
        raw = 10.0 * (z @ self.W[j] + self.b[j])
        if self.calibration is not None and value in self.calibration.values:
            out = self.calibration(raw)
        else:
            out = np.clip(raw, -10.0, 10.0)
        return np.asarray(out * self._gate(z, [value])[:, 0], np.float64)

    def relevance(self, texts: Sequence[str], values: Sequence[ValueNode | str] | None = None
                  ) -> NDArray[np.float64]:
        """``n × len(values)`` probabilities that each text says something about each value
        (default: every value with a head, in :attr:`values_` order). A value without a
        relevance head gets NaN."""
        vids = [self._resolve(v) for v in values] if values is not None else list(self.values_)
        z = self.embed(list(texts))
        out = np.full((len(z), len(vids)), np.nan)
        have = [(i, self._rcol[v]) for i, v in enumerate(vids) if v in self._rcol]
        if self.relevance_heads is None or not len(z) or not have:
            return out
        out[:, [i for i, _ in have]] = self.relevance_heads(z, [r for _, r in have])
        return out

    # -- DirectScorer --------------------------------------------------------------------
    def score(self, texts: Sequence[str], value: ValueNode | str) -> NDArray[np.float64]:
        """``(n, 3)``: mean intensity and a 90 % interval (low, high) in [-10, 10]."""
        vid = self._resolve(value)
        texts = list(texts)
        if not texts:
            return np.zeros((0, 3))
        mean = self.predict(self.embed(texts), vid)
        widths = np.asarray(self.widths.get(vid, self.widths["*"]), float)
        q = widths[_stratum(mean)]
        return np.column_stack([mean, np.clip(mean - q, -10, 10), np.clip(mean + q, -10, 10)])

    def score_all(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Mean intensities of ``texts`` on every value (``n × len(values_)``)."""
        z = self.embed(texts)
        raw = 10.0 * (z @ self.W.T + self.b)
        out = np.clip(raw, -10.0, 10.0)
        if self.calibration is not None:
            for v in self.calibration.values & set(self._col):
                out[:, self._col[v]] = self.calibration(raw[:, self._col[v]])
        return np.asarray(out * self._gate(z, self.values_), np.float64)

    # -- refit on a user's VIDB ------------------------------------------------------------
    def refit(self, vidb: pd.DataFrame, *, values: Sequence[str] | None = None,
              lam: float = 1.0, off_weight: float = 0.2, folds: int = 5, seed: int = 0
              ) -> ValueJudge:
        """A judge whose heads for ``values`` (default: every value of ``vidb``) are refitted
        on ``vidb`` by ridge on the fine-tuned embeddings; other heads stay as they are.

        ``vidb`` needs ``text``, ``value`` (canonical ids), ``intensity``. Its rows of other
        values are texts that say nothing about the refitted ones (target 0 at weight
        ``off_weight``, unless a cross-theory anchor links the two values). The intervals come
        from grouped K-fold residuals of the ridge.
        """
        from valueflow.embed._finetune import judge_targets
        from valueflow.embed._scorer import _linked_values

        frame = vidb.dropna(subset=["text", "value", "intensity"])
        if frame.empty:
            raise DataError("the VIDB has no usable rows",
                            hint="rows need text, value and intensity")
        texts = frame["text"].astype(str).tolist()
        row_values = np.array(frame["value"].astype(str).tolist())
        fit_values = sorted(set(values) if values is not None else set(row_values))
        y, w = judge_targets(list(row_values), frame["intensity"].to_numpy(float), fit_values,
                             _linked_values(), off_weight)
        z = self.embed(texts).astype(np.float64)
        truth = frame["intensity"].to_numpy(float)
        on = np.isin(row_values, fit_values)
        col = {v: j for j, v in enumerate(fit_values)}
        own = np.array([col.get(v, 0) for v in row_values])
        # grouped K-fold (by text) out-of-fold predictions for the intervals and CV figures
        rng = np.random.default_rng(seed)
        uniq = sorted(set(texts))
        fold_of = dict(zip(uniq, rng.permutation(len(uniq)) % folds, strict=True))
        fold = np.array([fold_of[t] for t in texts])
        oof = np.zeros(len(texts))
        for f in range(folds):
            tr, te = fold != f, (fold == f) & on
            if not te.any() or not tr.any():
                continue
            Wf, bf = ridge_heads(z[tr], y[tr], w[tr], lam)
            oof[te] = np.clip(10 * (np.einsum("nd,nd->n", z[te], Wf[own[te]]) + bf[own[te]]),
                              -10, 10)
        W_new, b_new = ridge_heads(z, y, w, lam)
        W = self.W.copy() if len(self.W) else np.zeros((0, z.shape[1]))
        b = self.b.copy()
        names = list(self.values_)
        for j, v in enumerate(fit_values):
            if v in self._col:
                W[self._col[v]], b[self._col[v]] = W_new[j], b_new[j]
            else:
                W = np.vstack([W, W_new[j][None, :]])
                b = np.append(b, b_new[j])
                names.append(v)
        t_on, p_on, v_on = truth[on], oof[on], row_values[on]
        widths = dict(self.widths)
        pooled = conformal_widths(t_on, p_on)
        widths["*"] = self.widths.get("*", pooled) if self.values_ else pooled
        for v in fit_values:
            m = v_on == v
            widths[v] = conformal_widths(t_on[m], p_on[m]) if m.sum() >= 30 else pooled
        from scipy.stats import spearmanr

        rho = float(spearmanr(t_on, p_on)[0]) if len(t_on) > 2 else float("nan")
        d = t_on != 0
        sign = float(np.mean(np.sign(p_on[d]) == np.sign(t_on[d]))) if d.any() else float("nan")
        src = sorted({Path(x).name or x for x in frame.loc[on, "source"].dropna().astype(str)}
                     ) if "source" in frame.columns else []
        kept = (f"; other values keep the shipped heads ({self.description.split(';')[0]})"
                if self.values_ else "")
        desc = (f"local judge: heads of {len(fit_values)} value(s) refitted on a VIDB of "
                f"{int(on.sum())} texts ({', '.join(src)[:200] or 'a table'}) over the "
                f"{self.model.name} encoder; grouped {folds}-fold CV on that VIDB: Spearman "
                f"{rho:.2f}, sign accuracy {sign:.2f}{kept}")
        cal = self.calibration.without(fit_values) if self.calibration is not None else None
        rel = RelevanceHeads.fit(z, texts, list(row_values), truth, fit_values)
        if self.relevance_heads is not None:
            # a refitted value whose new head could not be fitted keeps no gate
            keep = [i for i, v in enumerate(self.relevance_heads.values)
                    if v not in fit_values or v in rel.values]
            prev = self.relevance_heads
            rel = RelevanceHeads(prev.W[keep], prev.b[keep],
                                 tuple(prev.values[i] for i in keep)).merged(rel)
        return ValueJudge(self.model, W, b, names, widths, desc, cal, rel, self.floor)
