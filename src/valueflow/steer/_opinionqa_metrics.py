"""The arithmetic of OpinionQA group alignment, free of prompts, models and files.

* :func:`wasserstein_1d`: the 1-Wasserstein (earth mover's) distance between two
  distributions over the same ordered options, written from its one-dimensional form
  W1 = ∫ |F_p(x) - F_q(x)| dx, a sum over the gaps between consecutive positions;
* :func:`alignment`: 1 - W1 / (largest position - smallest position), which is the
  OpinionQA paper's 1 - W1 / (K - 1) for options at 1..K: 1 for identical distributions,
  0 when all mass sits at opposite ends;
* :func:`bootstrap_mean`: a percentile-bootstrap interval of a mean over questions;
* :func:`parse_letter` and :func:`letter_distribution`: a model's answer, from its text or
  from the log-probabilities of its first token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "LETTERS",
    "alignment",
    "bootstrap_mean",
    "letter_distribution",
    "parse_letter",
    "wasserstein_1d",
]

#: Option letters, A for the first option.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _check(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray,
           positions: Sequence[float] | np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 1:
        raise ValueError(f"need two distributions over the same options, got shapes "
                         f"{a.shape} and {b.shape}")
    if (a < 0).any() or (b < 0).any() or a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("distributions need non-negative mass that sums to more than 0")
    x = (np.arange(1, len(a) + 1, dtype=float) if positions is None
         else np.asarray(positions, dtype=float))
    if x.shape != a.shape:
        raise ValueError(f"need one position per option ({len(a)}), got {len(x)}")
    return a / a.sum(), b / b.sum(), x


def wasserstein_1d(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray,
                   positions: Sequence[float] | np.ndarray | None = None) -> float:
    """1-Wasserstein distance between ``p`` and ``q`` (normalised to sum to 1) over options
    at ``positions`` (default 1..K; any order, ties allowed)."""
    a, b, x = _check(p, q, positions)
    order = np.argsort(x, kind="stable")
    a, b, x = a[order], b[order], x[order]
    gap = np.diff(x)
    cdf_diff = np.cumsum(a - b)[:-1]
    return float(np.sum(np.abs(cdf_diff) * gap))


def alignment(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray,
              positions: Sequence[float] | np.ndarray | None = None) -> float:
    """1 - W1(p, q) / (span of the positions): 1 is the same distribution, 0 the farthest
    apart two distributions on these options can be. NaN when all positions are equal."""
    _, _, x = _check(p, q, positions)
    span = float(x.max() - x.min())
    if span <= 0:
        return math.nan
    return 1.0 - wasserstein_1d(p, q, x) / span


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, n_boot: int = 1000,
                   level: float = 0.90, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` (NaN left out) with a percentile-bootstrap interval at ``level``,
    resampling the values (questions) with replacement. One value: a zero-width interval;
    none: all NaN."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    boot = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return mean, float(lo), float(hi)


_WS = re.compile(r"\s+")
_MARKUP = " \t\n*_`'\"“”"


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip(_MARKUP).rstrip(".!").strip().lower()


def parse_letter(text: str, options: Sequence[str]) -> int | None:
    """The option a free-text answer picks (0-based), or ``None`` when it picks none.

    Accepted, in this order: the whole answer is one letter (``B``, ``b.``, ``(B)``,
    ``**B**``); an explicit ``Answer: B`` / ``answer is B``; an answer that starts with
    ``B)`` or ``B.`` (capital letter); the answer is, or starts with, one option's text; the
    answer names exactly one option's text. A lone letter inside a sentence ("a", "I") is
    never taken for an option. Letters beyond the options are no answer.
    """
    k = len(options)

    def index(letter: str) -> int | None:
        i = LETTERS.find(letter.upper())
        return i if 0 <= i < k else None

    raw = text.strip()
    if not raw:
        return None
    whole = raw.strip(_MARKUP).strip("().:").strip(_MARKUP)
    if len(whole) == 1 and whole.isalpha():
        return index(whole)
    m = re.search(r"\banswer(?:\s+is)?\s*[:\-]?\s*\(?\**([A-Za-z])\**\)?(?![A-Za-z])", raw,
                  flags=re.IGNORECASE)
    if m:
        return index(m.group(1))
    m = re.match(r"^[\s*(]*([A-Z])\s*[).:](?=\s|$)", raw)
    if m:
        return index(m.group(1))
    answer = _norm(raw)
    normed = [_norm(o) for o in options]
    for i, o in enumerate(normed):
        if answer == o:
            return i
    starts = [i for i, o in enumerate(normed) if o and answer.startswith(o)]
    if starts:
        return max(starts, key=lambda i: len(normed[i]))
    inside = [i for i, o in enumerate(normed) if o and o in answer]
    # an option inside a longer one ("Yes" in "Yes, I own a gun") does not count twice
    inside = [i for i in inside if not any(j != i and normed[i] in normed[j] for j in inside)]
    return inside[0] if len(inside) == 1 else None


def letter_distribution(top: Mapping[str, float], k: int) -> np.ndarray | None:
    """The answer distribution over ``k`` options from one token's alternatives
    (``{token: log-probability}``): tokens that are a capital option letter, with spaces or
    ``.``/``)`` around it, add their probability to that option; the result is
    renormalised over the options. ``None`` when no alternative is an option letter."""
    mass = np.zeros(k)
    for token, lp in top.items():
        if lp is None or not isinstance(token, str):
            continue
        t = token.strip().strip("().:*").strip()
        if len(t) == 1 and t in LETTERS[:k]:
            mass[LETTERS.index(t)] += math.exp(float(lp))
    total = mass.sum()
    return mass / total if total > 0 else None
