"""Validation of ranking data and its packing into padded arrays, grouped by length.

A ranking is a tuple of item ids ordered best first. Grouping the rankings by length turns
the Plackett–Luce likelihood into a few dense array operations (one per distinct length)
instead of a Python loop over rankings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError, DataError

__all__ = ["RankingGroup", "pack_rankings"]


@dataclass(frozen=True)
class RankingGroup:
    """Rankings of one length ``L``, packed into arrays.

    Attributes:
        items: ``(n, L)`` int array, item ids best first.
        n_ordered: ``(n,)`` number of leading choice steps that carry information
            (``L - 1`` for a fully ordered ranking).
        weights: ``(n,)`` non-negative weight of each ranking.
        mask: ``(n, L)`` bool, True at the positions whose choice step is modelled.
    """

    items: NDArray[np.int64]
    n_ordered: NDArray[np.int64]
    weights: NDArray[np.float64]
    mask: NDArray[np.bool_]

    @property
    def length(self) -> int:
        """The common length ``L`` of the rankings in this group."""
        return int(self.items.shape[1])


def _as_int_tuple(ranking: object, index: int, n_items: int) -> tuple[int, ...]:
    try:
        arr = np.asarray(ranking)
    except Exception as exc:  # pragma: no cover - numpy accepts nearly anything
        raise DataError(f"ranking {index} is not a sequence of item ids: {ranking!r}") from exc
    if arr.ndim != 1:
        raise DataError(
            f"ranking {index} must be a flat sequence of item ids, got {ranking!r}",
            hint="pass each ranking as a tuple of ints ordered best first, e.g. (3, 0, 7)",
        )
    if arr.size and not (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0))
    ):
        raise DataError(
            f"ranking {index} holds non-integer item ids: {ranking!r}",
            hint="item ids are integers 0 .. n_items - 1",
        )
    ids = tuple(int(x) for x in arr)
    if len(ids) < 2:
        raise DataError(
            f"ranking {index} has {len(ids)} item(s); a ranking needs at least 2",
            hint="drop rankings of a single item: they carry no information",
        )
    bad = [i for i in ids if i < 0 or i >= n_items]
    if bad:
        raise DataError(
            f"ranking {index} holds item id {bad[0]} outside 0 .. {n_items - 1}",
            hint="item ids must index the n_items items; raise n_items or renumber the items",
        )
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(
            f"ranking {index} repeats item {dup}: {ids}",
            hint="each item may appear at most once in a ranking",
        )
    return ids


def pack_rankings(
    rankings: Sequence[Sequence[int]],
    n_items: int,
    *,
    weights: Sequence[float] | NDArray[np.float64] | None = None,
    top: int | Sequence[int] | None = None,
) -> list[RankingGroup]:
    """Validate rankings and pack them into one :class:`RankingGroup` per length.

    Args:
        rankings: Tuples of item ids, best first.
        n_items: Number of items; ids must lie in ``0 .. n_items - 1``.
        weights: Optional non-negative weight per ranking.
        top: Optional number of ordered leading positions (one int for all rankings or one per
            ranking). A ranking ``(a, b, c, d)`` with ``top=1`` says only that ``a`` was chosen
            first from ``{a, b, c, d}``; the order of ``b, c, d`` carries no information.
            ``None`` means fully ordered.

    Raises:
        DataError: A ranking is malformed (repeated or out-of-range ids, fewer than 2 items),
            or the weights/top do not match the rankings.
        ConfigError: ``n_items`` is not a positive integer.
    """
    if not isinstance(n_items, int | np.integer) or n_items < 1:
        raise ConfigError(f"n_items must be a positive integer, got {n_items!r}")
    n_items = int(n_items)
    if not isinstance(rankings, np.ndarray) and len(rankings) and isinstance(rankings[0], tuple):
        # Equal-length tuples of ints (the common case): validate as one array.
        try:
            as_arr = np.array(rankings)
        except ValueError:  # ragged
            as_arr = None
        if as_arr is not None and as_arr.ndim == 2 and np.issubdtype(as_arr.dtype, np.integer):
            rankings = as_arr  # type: ignore[assignment]
    if isinstance(rankings, np.ndarray) and rankings.ndim == 2:
        ranks_list: list[tuple[int, ...]] = []
        arr = rankings
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.mod(arr, 1) == 0):
                raise DataError(
                    "rankings hold non-integer item ids",
                    hint="item ids are integers 0 .. n_items - 1",
                )
            arr = arr.astype(np.int64)
            rankings = arr
        if arr.shape[1] < 2:
            raise DataError("rankings need at least 2 items each")
        bad_rows = np.nonzero(np.any((arr < 0) | (arr >= n_items), axis=1))[0]
        if bad_rows.size:
            row = arr[bad_rows[0]]
            bad = int(row[(row < 0) | (row >= n_items)][0])
            raise DataError(
                f"ranking {int(bad_rows[0])} holds item id {bad} outside 0 .. {n_items - 1}",
                hint="item ids must index the n_items items; raise n_items or renumber the items",
            )
        srt = np.sort(arr, axis=1)
        rep = srt[:, 1:] == srt[:, :-1]
        if np.any(rep):
            r = int(np.nonzero(np.any(rep, axis=1))[0][0])
            dup = int(srt[r, 1:][rep[r]][0])
            raise DataError(
                f"ranking {r} repeats item {dup}: {tuple(int(x) for x in arr[r])}",
                hint="each item may appear at most once in a ranking",
            )
        lengths = np.full(arr.shape[0], arr.shape[1])
        fast = True
    else:
        ranks_list = [_as_int_tuple(r, i, n_items) for i, r in enumerate(rankings)]
        lengths = np.array([len(r) for r in ranks_list], dtype=np.int64)
        fast = False
    n = int(lengths.shape[0])
    if n == 0:
        raise DataError("no rankings were given", hint="pass at least one ranking of 2+ items")

    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise DataError(f"weights has shape {w.shape}, expected ({n},): one per ranking")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DataError("weights must be finite and non-negative")

    if top is None:
        t = lengths - 1
    else:
        t = np.broadcast_to(np.asarray(top, dtype=np.int64), (n,)).copy()
        if np.any(t < 1):
            raise DataError("top must be at least 1 (the winner of each ranking is ordered)")
        t = np.minimum(t, lengths - 1)

    groups: list[RankingGroup] = []
    for length in np.unique(lengths):
        sel = np.nonzero(lengths == length)[0]
        if fast:
            items = np.asarray(rankings, dtype=np.int64)[sel]
        else:
            items = np.array([ranks_list[i] for i in sel], dtype=np.int64)
        nt = t[sel]
        mask = np.arange(int(length))[None, :] < nt[:, None]
        groups.append(RankingGroup(items=items, n_ordered=nt, weights=w[sel], mask=mask))
    return groups
