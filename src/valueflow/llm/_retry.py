"""Retry timing: exponential backoff with jitter, honouring ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RETRY_STATUS", "RetryPolicy", "parse_retry_after"]

# 408 request timeout, 409 (some gateways on overload), 425 too early, 429 rate limited, 5xx.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 524, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed call.

    Attributes:
        max_retries: Retries after the first try (so ``max_retries + 1`` calls at most).
        base_delay: Seconds of the first backoff step.
        max_delay: Cap on one wait.
    """

    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, retry: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        Jitter (a uniform draw between half and all of the exponential step) spreads a
        burst of 429s over time instead of having every request come back at once. A server's
        ``Retry-After`` is a floor, still capped by ``max_delay``.
        """
        step = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        wait = (rng or random).uniform(0.5 * step, step)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
