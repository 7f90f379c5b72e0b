"""A running value profile of one person, updated one message at a time.

Per value the tracker keeps a normal posterior over the person's stance (their mean intensity
in [-10, 10]). Each message is scored on every value by a judge (intensity and interval) and,
where the judge has relevance heads, by how much it says about the value at all. A message
is an observation of the stance with variance ``(judge sd² + spread²) / weight``, where the
weight comes from the relevance: a message about cooking carries no weight on tradition and
moves nothing. The prior is wide (``prior_sd``): a value nobody has said anything about stays
*unknown* (``known`` is False, its interval spans most of the scale) instead of looking like a
confident 0. With ``half_life`` the weight of older messages halves every that many turns, for
long conversations whose person changes their mind.

The math (:func:`posterior`) is pure; :class:`ProfileTracker` holds the messages, the judge
and the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from valueflow.embed._profile import RELEVANCE_RAMP, relevance_weight
from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Evidence", "ProfileTracker", "TrackerSettings", "TurnUpdate", "posterior",
           "relevance_weight"]

_Z90 = 1.6448536269514722


class TrackerSettings(BaseModel):
    """How evidence accumulates (every field has a default a researcher can start from)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior_sd: float = Field(default=5.0, gt=0)
    """Prior sd of a stance: with no evidence the 90 % interval is about ±8 (unknown)."""
    spread: float = Field(default=3.0, ge=0)
    """How much one person's messages vary around their stance (sd, intensity points)."""
    relevance_low: float = Field(default=RELEVANCE_RAMP[0], ge=0, le=1)
    """Relevance at or below which a message carries no weight on a value."""
    relevance_high: float = Field(default=RELEVANCE_RAMP[1], ge=0, le=1)
    """Relevance from which a message carries full weight (linear in between)."""
    known_weight: float = Field(default=0.75, gt=0)
    """Evidence (sum of weights) from which a value counts as known."""
    half_life: float | None = Field(default=None, gt=0)
    """Turns after which a message's weight halves (None: never forget)."""
    level: float = Field(default=0.9, gt=0, lt=1)
    """Interval level."""


def posterior(x: NDArray[Any], sd: NDArray[Any], weight: NDArray[Any], *, prior_sd: float,
              spread: float) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                      NDArray[np.float64]]:
    """Posterior mean and sd of stances, and the evidence behind them.

    Args:
        x, sd, weight: ``messages × values``: measured intensities, the judge's sd of each, and
            each message's weight on each value (0: says nothing about it).
        prior_sd: Prior N(0, prior_sd²) of a stance.
        spread: sd of a person's messages around their stance.

    Returns:
        ``(mean, sd, evidence)`` per value; ``evidence`` is the sum of the weights.
    """
    x, sd, w = (np.asarray(a, np.float64) for a in (x, sd, weight))
    if x.ndim == 1:
        x, sd, w = x[None, :], sd[None, :], w[None, :]
    prec = w / (sd ** 2 + spread ** 2)  # a weight-0 message adds no precision
    total = 1.0 / prior_sd ** 2 + prec.sum(axis=0)
    mean = (prec * x).sum(axis=0) / total
    return mean, 1.0 / np.sqrt(total), w.sum(axis=0)


@dataclass(frozen=True)
class Evidence:
    """What one message did to one value."""

    turn: int
    message: str
    intensity: float
    relevance: float
    weight: float
    shift: float
    """Change of the posterior mean that this message caused when it arrived."""


@dataclass
class TurnUpdate:
    """The result of adding one message."""

    turn: int
    message: str
    changes: dict[str, tuple[float, float]] = field(default_factory=dict)
    """value → (mean before, mean after), for values whose mean moved by ≥ 0.05."""
    relevant: list[str] = field(default_factory=list)
    """Values this message carried weight on, most weight first."""

    def moved(self, threshold: float = 0.5) -> dict[str, float]:
        """Values whose mean moved by at least ``threshold``: value → shift."""
        return {v: b - a for v, (a, b) in self.changes.items() if abs(b - a) >= threshold}


class ProfileTracker:
    """A live value profile from a conversation (see the module docstring).

    Args:
        judge: A scorer with ``score(texts, value) -> (n, 3)`` (mean, low, high) and,
            optionally, ``relevance(texts, values) -> (n, k)`` (the local judge has both;
            default: the local judge).
        values: Values to track (names or ids; default the 32 evaluation values).
        settings: See :class:`TrackerSettings`.
    """

    def __init__(self, judge: Any = None, values: Sequence[str] | None = None,
                 settings: TrackerSettings | None = None) -> None:
        from valueflow.theories import evaluation_values, resolve_value

        if judge is None:
            from valueflow.embed import load_local_scorer

            judge = load_local_scorer()
        self.judge = judge
        self.settings = settings or TrackerSettings()
        nodes = [resolve_value(v) for v in values] if values else evaluation_values()
        self.values = [n.id for n in nodes]
        self.theory = {n.id: n.theory for n in nodes}
        self.messages: list[str] = []
        self._x = np.zeros((0, len(self.values)))
        self._sd = np.zeros((0, len(self.values)))
        self._rel = np.zeros((0, len(self.values)))
        self._evidence: dict[str, list[Evidence]] = {v: [] for v in self.values}
        self.history: list[pd.DataFrame] = []

    # -- updating ------------------------------------------------------------------------
    def add(self, message: str) -> TurnUpdate:
        """Score ``message`` and update the profile; returns what changed."""
        text = " ".join(str(message).split())
        if not text:
            raise DataError("the message is empty",
                            hint="give the text the person wrote (at least one word)")
        before = self._state()[0]
        x, sd, rel = self._measure([text])
        self.messages.append(text)
        self._x = np.vstack([self._x, x])
        self._sd = np.vstack([self._sd, sd])
        self._rel = np.vstack([self._rel, rel])
        after = self._state()[0]
        turn = len(self.messages) - 1
        w = self._weights()[-1]
        upd = TurnUpdate(turn, text)
        for j, v in enumerate(self.values):
            if w[j] > 0:
                self._evidence[v].append(Evidence(turn, text, float(x[0, j]), float(rel[0, j]),
                                                  float(w[j]), float(after[j] - before[j])))
            if abs(after[j] - before[j]) >= 0.05:
                upd.changes[v] = (float(before[j]), float(after[j]))
        upd.relevant = [self.values[j] for j in np.argsort(-w) if w[j] > 0]
        self.history.append(self.profile())
        return upd

    def extend(self, messages: Sequence[str]) -> list[TurnUpdate]:
        """:meth:`add` each message in turn."""
        return [self.add(m) for m in messages]

    def _measure(self, texts: list[str]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                  NDArray[np.float64]]:
        k = len(self.values)
        x = np.zeros((len(texts), k))
        sd = np.zeros((len(texts), k))
        for j, v in enumerate(self.values):
            out = np.asarray(self.judge.score(texts, v), np.float64)
            x[:, j] = out[:, 0]
            sd[:, j] = np.maximum((out[:, 2] - out[:, 1]) / (2 * _Z90), 1e-6)
        rel = np.full((len(texts), k), np.nan)
        if hasattr(self.judge, "relevance"):
            rel = np.asarray(self.judge.relevance(texts, self.values), np.float64)
        return x, sd, rel

    def _weights(self) -> NDArray[np.float64]:
        s = self.settings
        w = relevance_weight(self._rel, s.relevance_low, s.relevance_high)
        if s.half_life is not None and len(w):
            age = (len(w) - 1) - np.arange(len(w))
            w = w * (0.5 ** (age / s.half_life))[:, None]
        return w

    def _state(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        s = self.settings
        if not len(self._x):
            k = len(self.values)
            return np.zeros(k), np.full(k, s.prior_sd), np.zeros(k)
        return posterior(self._x, self._sd, self._weights(), prior_sd=s.prior_sd,
                         spread=s.spread)

    # -- reading -------------------------------------------------------------------------
    def profile(self) -> pd.DataFrame:
        """One row per value: ``value, theory, intensity`` (posterior mean), ``low, high``
        (the interval at ``settings.level``), ``evidence`` (sum of weights), ``n_messages``
        (messages with weight on it), ``known``. Sorted as the values were given."""
        import pandas as pd
        from scipy.stats import norm

        mean, sd, ev = self._state()
        q = float(norm.ppf(0.5 + self.settings.level / 2))
        w = self._weights()
        n = (w > 0).sum(axis=0) if len(w) else np.zeros(len(self.values), int)
        return pd.DataFrame({
            "value": self.values, "theory": [self.theory[v] for v in self.values],
            "intensity": mean, "low": np.clip(mean - q * sd, -10, 10),
            "high": np.clip(mean + q * sd, -10, 10), "evidence": ev,
            "n_messages": n.astype(int), "known": ev >= self.settings.known_weight})

    def top(self, k: int = 5, *, known_only: bool = True) -> pd.DataFrame:
        """The ``k`` values held most strongly (largest |mean|), known ones only by default."""
        p = self.profile()
        if known_only:
            p = p[p["known"]]
        return p.reindex(p["intensity"].abs().sort_values(ascending=False).index).head(k)

    def evidence(self, value: str) -> list[Evidence]:
        """The messages that carried weight on ``value``, in order."""
        from valueflow.theories import resolve_value

        vid = resolve_value(value).id
        if vid not in self._evidence:
            raise DataError(f"the tracker does not follow {vid}",
                            hint=f"it follows: {', '.join(self.values)}")
        return list(self._evidence[vid])
