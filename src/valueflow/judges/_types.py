"""What a judge returns, and the protocols every judge implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from valueflow.theories import ValueNode

__all__ = [
    "DirectScorer",
    "RankOutcome",
    "RankingJudge",
    "RateOutcome",
    "RatingJudge",
]


@dataclass(frozen=True, slots=True)
class RankOutcome:
    """The result of asking a judge to rank one window of texts.

    Attributes:
        order: Indices into the texts given to :meth:`RankingJudge.rank`, from the text that
            supports the value most to the one that opposes it most; ``None`` on failure.
        error: Why the window failed (an unreadable answer after the corrective re-ask, or a
            backend error); ``None`` on success.
        attempts: Judge calls spent on the window (2 when a corrective re-ask was needed).
        raw: The judge's last answer, verbatim (for audits of parsing failures).
    """

    order: tuple[int, ...] | None
    error: str | None = None
    attempts: int = 1
    raw: str | None = None

    @property
    def ok(self) -> bool:
        """True when the window produced a valid ranking."""
        return self.order is not None

    @classmethod
    def failure(cls, error: str, *, attempts: int = 1, raw: str | None = None) -> RankOutcome:
        return cls(order=None, error=error, attempts=attempts, raw=raw)


@dataclass(frozen=True, slots=True)
class RateOutcome:
    """The result of asking a judge for one scalar rating of a text.

    Attributes:
        rating: The rating in [-10, 10]; ``None`` on failure.
        error: Why the rating failed; ``None`` on success.
        attempts: Judge calls spent (2 when a corrective re-ask was needed).
        raw: The judge's last answer, verbatim.
    """

    rating: float | None
    error: str | None = None
    attempts: int = 1
    raw: str | None = None

    @property
    def ok(self) -> bool:
        """True when the judge gave a readable rating."""
        return self.rating is not None

    @classmethod
    def failure(cls, error: str, *, attempts: int = 1, raw: str | None = None) -> RateOutcome:
        return cls(rating=None, error=error, attempts=attempts, raw=raw)


@runtime_checkable
class RankingJudge(Protocol):
    """Ranks a window of texts from most supporting to most opposing a value.

    Implementations may also offer ``async rank_many(value, windows, *, progress=False) ->
    list[RankOutcome]`` to send many windows at once (the evaluator uses it when present,
    so a server stays saturated), and ``check_texts(texts)`` to reject texts they cannot
    judge before any work starts.
    """

    name: str

    async def rank(self, value: ValueNode, texts: list[str]) -> RankOutcome:
        """Rank ``texts``; a judge never raises for an unreadable answer, it fails the window."""
        ...


@runtime_checkable
class RatingJudge(Protocol):
    """Gives one scalar rating in [-10, 10] per text (the rating baseline)."""

    name: str

    async def rate(self, value: ValueNode, text: str) -> RateOutcome:
        """Rate ``text``; an unreadable answer is a failed outcome, not an exception."""
        ...


@runtime_checkable
class DirectScorer(Protocol):
    """Predicts intensities without ranking windows (e.g. the local scorer from ``embed``).

    Attributes:
        name: A short name, written to the ``judge`` column of scores.
        description: What the scorer is and what it was trained on.
    """

    name: str
    description: str

    def score(self, texts: Sequence[str], value: ValueNode) -> NDArray[np.float64]:
        """An ``(n, 3)`` array: mean intensity, low and high end of a 90 % interval."""
        ...
