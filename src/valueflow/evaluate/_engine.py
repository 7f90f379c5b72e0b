"""Scoring the texts of one value: windows, judge calls in rounds, anchored estimation.

For each text the judge ranks ``m`` windows, each the text plus ``k - 1`` anchors of known
intensity. With the ``adaptive`` design the windows go out in ``m`` rounds: each round places
every text's anchors around its current posterior (round 0: the anchors' own density),
spread to match the judge's noise β estimated from the rounds so far. Every round's windows for all texts are sent
at once, so a server stays saturated. ``random`` and ``bucket`` designs send all windows in
one round.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError
from valueflow.evaluate._anchors import AnchorPool
from valueflow.judges import DirectScorer, RankOutcome, RateOutcome
from valueflow.theories import ValueNode

__all__ = ["Design", "Estimator", "ValueScores", "rank_windows", "score_value"]

Design = Literal["adaptive", "bucket", "random"]
Estimator = Literal["bayes", "reference"]

Array = NDArray[np.float64]


@dataclass
class ValueScores:
    """Scores of the distinct texts of one value."""

    intensity: Array
    low: Array
    high: Array
    n_windows: NDArray[np.int64]
    n_failures: NDArray[np.int64]
    beta: float
    errors: list[str] = field(default_factory=list)


def value_seed(seed: int, value_id: str) -> np.random.SeedSequence:
    """A seed per value that does not depend on which other values are scored."""
    h = int.from_bytes(hashlib.sha256(value_id.encode()).digest()[:4], "little")
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, h])


async def rank_windows(judge: Any, value: ValueNode, windows: list[list[str]],
                       progress: bool) -> list[RankOutcome]:
    """Rank windows with the judge's batch method when it has one, else concurrently."""
    if not windows:
        return []
    if hasattr(judge, "rank_many"):
        return list(await judge.rank_many(value, windows, progress=progress))
    return list(await asyncio.gather(*(judge.rank(value, w) for w in windows)))


async def rate_texts(judge: Any, value: ValueNode, texts: list[str],
                     progress: bool) -> list[RateOutcome]:
    """Rate texts with the judge's batch method when it has one, else concurrently."""
    if hasattr(judge, "rate_many"):
        return list(await judge.rate_many(value, texts, progress=progress))
    return list(await asyncio.gather(*(judge.rate(value, t) for t in texts)))


def _avoid_self(ids: NDArray[np.int64], self_ids: NDArray[np.int64], n_pool: int,
                rng: np.random.Generator) -> NDArray[np.int64]:
    """Replace an anchor that is the scored text itself with an anchor unused in its window.

    ``ids`` is ``(n_items, windows, k - 1)``; ``self_ids[i]`` is item i's anchor id or -1.
    """
    out = ids.copy()
    for i in np.nonzero(self_ids >= 0)[0]:
        for row in out[i]:
            hit = np.nonzero(row == self_ids[i])[0]
            if hit.size:
                used = set(row.tolist()) | {int(self_ids[i])}
                row[hit[0]] = rng.choice([j for j in range(n_pool) if j not in used])
    return out


def _note(progress: bool, message: str) -> None:
    if progress and sys.stderr.isatty():
        from rich.console import Console

        Console(stderr=True).print(f"[dim]{message}[/dim]")


async def score_value(
    judge: Any,
    value: ValueNode,
    texts: list[str],
    pool: AnchorPool,
    *,
    k: int,
    m: int,
    design: Design,
    method: Literal["ranking", "rating"],
    estimator: Estimator,
    seed: int,
    progress: bool,
) -> ValueScores:
    """Score distinct ``texts`` against one value's anchor pool (see the module docstring)."""
    n = len(texts)
    if isinstance(judge, DirectScorer) and not hasattr(judge, "rank"):
        est = np.asarray(judge.score(texts, value), dtype=float).reshape(n, 3)
        zeros = np.zeros(n, dtype=np.int64)
        return ValueScores(est[:, 0], est[:, 1], est[:, 2], zeros, zeros.copy(), float("nan"))
    if method == "rating":
        outs = await rate_texts(judge, value, texts, progress)
        rating = np.array([o.rating if o.ok else np.nan for o in outs], dtype=float)
        ok = np.isfinite(rating)
        nan = np.full(n, np.nan)
        return ValueScores(rating, nan, nan.copy(), ok.astype(np.int64),
                           (~ok).astype(np.int64), float("nan"),
                           [o.error for o in outs if o.error])
    return await _rank_value(judge, value, texts, pool, k=k, m=m, design=design,
                             estimator=estimator, seed=seed, progress=progress)


async def _rank_value(judge: Any, value: ValueNode, texts: list[str], pool: AnchorPool, *,
                      k: int, m: int, design: Design, estimator: Estimator, seed: int,
                      progress: bool) -> ValueScores:
    from valueflow.ranking import (
        UNKNOWN,
        AdaptiveDesigner,
        AnchoredScorer,
        ReferenceAnchoredScorer,
        anchor_prior,
        bucket_windows,
        random_windows,
    )

    if design not in ("adaptive", "bucket", "random"):
        raise ConfigError(f"unknown design {design!r}", hint="use adaptive, bucket or random")
    if estimator not in ("bayes", "reference"):
        raise ConfigError(f"unknown estimator {estimator!r}", hint="use bayes or reference")
    n, a = len(texts), pool.intensities
    index = pool.index_of()
    self_ids = np.array([index.get(t, -1) for t in texts], dtype=np.int64)
    ss = value_seed(seed, value.id)
    rng = np.random.default_rng(ss.spawn(1)[0])
    # The reference method has no adaptive design: it uses its own bucket windows.
    if estimator == "reference" and design == "adaptive":
        design = "bucket"
    rounds = m if design == "adaptive" else 1
    name = getattr(judge, "name", "judge")

    items: list[int] = []
    rankings: list[list[int]] = []
    fails = np.zeros(n, dtype=np.int64)
    errors: list[str] = []
    designer = AdaptiveDesigner(a, k, seed=int(rng.integers(2**31))) if design == "adaptive" \
        else None
    scorer: AnchoredScorer | None = None
    for r in range(rounds):
        if design == "random":
            ids = random_windows(a, k, m, n, seed=rng)
        elif design == "bucket":
            ids = bucket_windows(a, k, m, n, seed=rng)
        else:
            assert designer is not None
            if scorer is None:  # round 0 (or every window failed so far): the prior
                grid = np.linspace(min(-10.0, a.min()), max(10.0, a.max()), 401)
                post, beta = np.repeat(anchor_prior(a, grid)[None, :], n, axis=0), 1.0
            else:
                grid, post = scorer.grid_, scorer.posterior_
                beta = scorer.beta_.get(name, 1.0)
            ids = designer.propose(post, grid, beta)[:, None, :]
        ids = _avoid_self(ids, self_ids, len(pool), rng)
        owner = np.repeat(np.arange(n), ids.shape[1])
        flat = ids.reshape(-1, k - 1)
        windows = [[texts[i], *(pool.texts[j] for j in row)]
                   for i, row in zip(owner, flat, strict=True)]
        if rounds > 1:
            _note(progress, f"{value.id}: round {r + 1}/{rounds}, {len(windows)} windows")
        outs = await rank_windows(judge, value, windows, progress)
        for i, row, out in zip(owner, flat, outs, strict=True):
            if out.order is None:
                fails[i] += 1
                if out.error:
                    errors.append(out.error)
                continue
            members = [UNKNOWN, *(int(j) for j in row)]
            items.append(int(i))
            rankings.append([members[p] for p in out.order])
        if r < rounds - 1 and rankings:
            scorer = AnchoredScorer(a).fit(items, rankings, [name] * len(rankings), n_items=n)
    nwin = np.bincount(np.asarray(items, dtype=np.int64), minlength=n).astype(np.int64)
    nan = np.full(n, np.nan)
    if not rankings:
        return ValueScores(nan, nan.copy(), nan.copy(), nwin, fails, float("nan"), errors)
    if estimator == "reference":
        ref = ReferenceAnchoredScorer(a).fit(items, rankings, n_items=n)
        return ValueScores(ref.scores_, nan, nan.copy(), nwin, fails, 1.0, errors)
    scorer = AnchoredScorer(a).fit(items, rankings, [name] * len(rankings), n_items=n)
    return ValueScores(scorer.mean_, scorer.low_, scorer.high_, nwin, fails,
                       float(scorer.beta_.get(name, np.nan)), errors)


def windows_for_plan(pool: AnchorPool, n: int, *, k: int, m: int, design: Design,
                     seed: int, value_id: str) -> NDArray[np.int64]:
    """The windows a run would send (adaptive: strata windows of the same count), for
    ``--dry-run`` estimates."""
    from valueflow.ranking import bucket_windows, random_windows

    rng = np.random.default_rng(value_seed(seed, value_id).spawn(1)[0])
    if design == "random":
        return random_windows(pool.intensities, k, m, n, seed=rng)
    return bucket_windows(pool.intensities, k, m, n, seed=rng)


def check_window_size(pool: AnchorPool, texts: Sequence[str], k: int, value_id: str) -> None:
    """Raise a :class:`ConfigError` when ``k`` needs more anchors than the pool has."""
    if k < 2:
        raise ConfigError(f"--k must be at least 2 (the text and one anchor), got {k}")
    in_pool = any(t in pool.index_of() for t in texts)
    usable = len(pool) - (1 if in_pool else 0)
    if k - 1 > usable:
        raise ConfigError(
            f"k={k} needs {k - 1} anchors per window, but the VIDB ({pool.source}) has only "
            f"{usable} usable anchor(s) for {value_id}",
            hint=f"use --k {usable + 1} or less, or add anchors to the VIDB",
        )
