"""Simulated judges with known behaviour, for planning, benchmarks and tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from valueflow.errors import ConfigError, DataError
from valueflow.judges._types import RankOutcome, RateOutcome

if TYPE_CHECKING:
    from valueflow.theories import ValueNode

__all__ = ["SimulatedRatingJudge", "SimulatedTextJudge"]

Truth = Mapping[str, float] | Callable[[str, str], float]
"""Latent intensities: ``{text: intensity}`` or ``fn(value_id, text) -> intensity``."""


def _lookup(truth: Truth, value: str, text: str) -> float:
    if callable(truth):
        return float(truth(value, text))
    try:
        return float(truth[text])
    except KeyError:
        raise DataError(
            f"the simulated judge has no latent intensity for the text {text[:60]!r}",
            hint="the truth table (--sim-truth) must hold every scored text and every anchor, "
            "matched by exact text",
        ) from None


def _missing(truth: Truth, texts: Sequence[str]) -> list[str]:
    if callable(truth):
        return []
    return [t for t in dict.fromkeys(texts) if t not in truth]


class SimulatedTextJudge:
    """Ranks texts by latent intensities with Plackett–Luce noise.

    A window's order is drawn from Plackett–Luce with utilities ``beta * intensity``:
    ``beta`` large gives a near-perfect judge, ``beta`` 0 a random one. Each call draws new
    noise from one seeded generator, so a run is reproducible.

    Args:
        truth: ``{text: intensity}`` or ``fn(value_id, text) -> intensity``.
        beta: Judge sharpness (utilities per intensity point).
        seed: Seed of the noise.
        name: Name written to results.
    """

    def __init__(self, truth: Truth, beta: float = 1.0, seed: int = 0,
                 name: str | None = None) -> None:
        if not math.isfinite(beta) or beta < 0:
            raise ConfigError(f"beta must be a finite number >= 0, got {beta}")
        self.truth = truth
        self.beta = float(beta)
        self.seed = seed
        self.name = name or f"sim(beta={beta:g})"
        self._rng = np.random.default_rng(seed)

    def check_texts(self, texts: Sequence[str]) -> None:
        """Raise a :class:`DataError` naming texts without a latent intensity."""
        missing = _missing(self.truth, texts)
        if missing:
            raise DataError(
                f"the simulated judge's truth table lacks {len(missing)} text(s), e.g. "
                f"{missing[0][:60]!r}",
                hint="the truth table (--sim-truth) must hold every scored text and every "
                "anchor, matched by exact text",
            )

    async def rank(self, value: ValueNode, texts: list[str]) -> RankOutcome:
        """Draw a ranking of ``texts`` (indices, most supporting first)."""
        u = self.beta * np.array([_lookup(self.truth, value.id, t) for t in texts])
        # Gumbel-max: sorting utilities plus Gumbel noise samples a Plackett–Luce order.
        noisy = u + self._rng.gumbel(size=len(texts))
        return RankOutcome(tuple(int(i) for i in np.argsort(-noisy, kind="stable")))

    async def rank_many(self, value: ValueNode, windows: Sequence[Sequence[str]], *,
                        progress: bool = False) -> list[RankOutcome]:
        """Rank many windows (no I/O, so in order)."""
        return [await self.rank(value, list(w)) for w in windows]


class SimulatedRatingJudge:
    """Rates texts as ``scale * intensity + bias + noise``, clipped to [-10, 10].

    Args:
        truth: ``{text: intensity}`` or ``fn(value_id, text) -> intensity``.
        noise_sd: Standard deviation of the Gaussian noise per rating.
        bias: A constant offset (a lenient or harsh judge).
        scale: Stretch of the judge's scale (1: calibrated).
        seed: Seed of the noise.
        name: Name written to results.
    """

    def __init__(self, truth: Truth, noise_sd: float = 2.0, bias: float = 0.0,
                 scale: float = 1.0, seed: int = 0, name: str | None = None) -> None:
        if not math.isfinite(noise_sd) or noise_sd < 0:
            raise ConfigError(f"noise_sd must be a finite number >= 0, got {noise_sd}")
        self.truth = truth
        self.noise_sd = float(noise_sd)
        self.bias = float(bias)
        self.scale = float(scale)
        self.seed = seed
        self.name = name or f"sim-rating(sd={noise_sd:g})"
        self._rng = np.random.default_rng(seed)

    def check_texts(self, texts: Sequence[str]) -> None:
        """Raise a :class:`DataError` naming texts without a latent intensity."""
        SimulatedTextJudge.check_texts(self, texts)  # type: ignore[arg-type]

    async def rate(self, value: ValueNode, text: str) -> RateOutcome:
        """Draw one rating."""
        mean = self.scale * _lookup(self.truth, value.id, text) + self.bias
        return RateOutcome(float(np.clip(mean + self._rng.normal(0.0, self.noise_sd), -10, 10)))

    async def rate_many(self, value: ValueNode, texts: Sequence[str], *,
                        progress: bool = False) -> list[RateOutcome]:
        """Rate many texts (no I/O, so in order)."""
        return [await self.rate(value, t) for t in texts]
