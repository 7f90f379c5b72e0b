"""A simulated judge: Plackett–Luce rankings from latent intensities, for planning and tests."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError, DataError

__all__ = ["SimulatedJudge", "sample_pl_rankings"]


def sample_pl_rankings(
    utilities: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """Sample one Plackett–Luce ranking per row of ``utilities`` (Gumbel-max trick).

    Sorting ``u + Gumbel noise`` in descending order draws exactly from Plackett–Luce.

    Returns:
        ``(W, L)`` column indices of each row, best first.
    """
    u = np.atleast_2d(np.asarray(utilities, dtype=float))
    noisy = u + rng.gumbel(size=u.shape)
    return np.argsort(-noisy, axis=1, kind="stable")


class SimulatedJudge:
    """A judge that ranks items by latent intensities with Plackett–Luce noise.

    The judge orders a window best (most supportive) first by sampling a Plackett–Luce
    ranking with utilities ``beta · intensity``: ``beta`` large → nearly the true order,
    ``beta`` → 0 → random orders. Researchers use it to choose ``k`` (window size) and ``m``
    (windows per text) before paying for real judges.

    Args:
        truth: Latent intensity of each item: a mapping key → intensity, or a sequence
            (item ``i`` has intensity ``truth[i]``).
        beta: Noise parameter (> 0).
        seed: Seed of the judge's random generator (same seed, same rankings).
    """

    def __init__(
        self,
        truth: Mapping[Hashable, float] | Sequence[float] | NDArray[np.float64],
        beta: float,
        seed: int | None = 0,
    ) -> None:
        if not (np.isfinite(beta) and beta > 0):
            raise ConfigError(f"beta must be a positive number, got {beta!r}")
        self.truth = truth
        self.beta = float(beta)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def intensity(self, item: Hashable) -> float:
        """The latent intensity of ``item``."""
        try:
            value = self.truth[item]  # type: ignore[index,call-overload]
        except (KeyError, IndexError, TypeError) as exc:
            raise DataError(
                f"the simulated judge has no intensity for item {item!r}",
                hint="give every item that may appear in a window a latent intensity",
            ) from exc
        return float(value)

    def rank(self, items: Sequence[Hashable]) -> list[Hashable]:
        """Rank ``items`` best first."""
        if len(items) < 2:
            raise DataError("a window needs at least 2 items to rank")
        u = self.beta * np.array([self.intensity(i) for i in items])
        order = sample_pl_rankings(u, self._rng)[0]
        return [items[int(j)] for j in order]

    def rank_intensities(self, intensities: NDArray[np.float64]) -> NDArray[np.int64]:
        """Vectorised: rank each row of a ``(W, L)`` intensity array; column indices best first."""
        return sample_pl_rankings(self.beta * np.asarray(intensities, dtype=float), self._rng)
