"""LLMs as ranking and rating judges: prompt, send through an LLM client, parse, re-ask once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.judges._parse import ParseError, parse_ranking, parse_rating
from valueflow.judges._prompts import (
    N_RANKING_PARAPHRASES,
    N_RATING_PARAPHRASES,
    Labels,
    ranking_correction,
    ranking_messages,
    ranking_schema,
    rating_correction,
    rating_messages,
    rating_schema,
)
from valueflow.judges._types import RankOutcome, RateOutcome

if TYPE_CHECKING:
    from valueflow.theories import ValueNode

__all__ = ["LLMRankingJudge", "LLMRatingJudge", "display_permutation", "supports_json_schema"]

# Backends known to constrain output to a JSON schema (llama.cpp grammars, vLLM guided
# decoding, OpenAI-compatible servers' response_format). The transformers backend does not.
_STRUCTURED_KINDS = frozenset({"openai", "llamacpp", "vllm"})


def supports_json_schema(client: Any) -> bool:
    """Whether the client's backend honours ``ChatRequest.json_schema``."""
    backend = getattr(client, "backend", None)
    flag = getattr(backend, "supports_json_schema", None)
    if isinstance(flag, bool):
        return flag
    return getattr(backend, "kind", "") in _STRUCTURED_KINDS


def display_permutation(key: str, k: int, seed: int = 0) -> list[int]:
    """The order a window's texts are shown in: ``perm[j]`` is the text shown at position j.

    Seeded by the window's content, so a rerun builds the very same prompt (and hits the
    cache) while the text being scored lands at a different position in each window.
    """
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return [int(i) for i in rng.permutation(k)]


def _takes_accept(client: Any) -> bool:
    """Whether ``client.generate`` takes ``accept=`` (an LLMClient; test doubles may not)."""
    import inspect

    try:
        return "accept" in inspect.signature(client.generate).parameters
    except (TypeError, ValueError):
        return False


def _readable(parse: Callable[[], Any]) -> bool:
    try:
        parse()
    except ParseError:
        return False
    return True


class _LLMJudgeBase:
    def __init__(self, client: Any, *, paraphrase: int, structured: bool | None,
                 max_tokens: int, temperature: float, reask: bool, name: str | None,
                 n_paraphrases: int) -> None:
        from valueflow.errors import ConfigError

        if not 0 <= paraphrase < n_paraphrases:
            raise ConfigError(f"paraphrase must be 0..{n_paraphrases - 1}, not {paraphrase}")
        self.client = client
        self.paraphrase = paraphrase
        self.structured = supports_json_schema(client) if structured is None else structured
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.reask = reask
        backend = getattr(client, "backend", None)
        spec = getattr(backend, "spec", None) or type(client).__name__
        self.name = name or (spec if paraphrase == 0 else f"{spec}#p{paraphrase}")

    def _request(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> Any:
        from valueflow.llm import ChatRequest

        return ChatRequest(messages=messages, max_tokens=self.max_tokens,
                           temperature=self.temperature,
                           json_schema=schema if self.structured else None)

    async def _send(self, requests: list[Any], progress: bool,
                    readable: Callable[[int, str], bool] | None = None) -> list[Any]:
        """Send ``requests``; answers ``readable(i, text)`` rejects are not cached, so a
        rerun asks the judge again instead of replaying an unreadable answer."""
        if not requests:
            return []
        if readable is None or not _takes_accept(self.client):
            return list(await self.client.generate(requests, progress=progress))
        return list(await self.client.generate(
            requests, progress=progress, accept=lambda i, res: readable(i, res.text)))


class LLMRankingJudge(_LLMJudgeBase):
    """An LLM that ranks windows of texts from most supporting to most opposing a value.

    The texts of a window are shown in a random order, seeded by the window's content (so the
    text being scored is not always first, and a rerun sends identical, cached prompts); the
    answer is mapped back to the caller's order. An unreadable answer is re-asked once with a
    message saying what was wrong; if that fails too the window is a failure with its reason.

    Args:
        client: A :class:`valueflow.llm.LLMClient` (caching, concurrency, retries).
        paraphrase: Which wording of the prompt to use (0 is the default).
        structured: Request JSON-schema output; ``None`` asks it when the backend supports it.
        labels: Show texts with ids ``1..k`` (``"numbers"``) or ``A..`` (``"letters"``).
        shuffle: Randomise the display order (turn off only to study position bias).
        seed: Mixed into the display order's seed.
        max_tokens: Token budget of an answer.
        temperature: Sampling temperature (0: greedy).
        reask: Send one corrective message after an unreadable answer.
        name: Name written to results (default: the backend spec, plus ``#p<n>`` for
            paraphrases other than 0).
    """

    def __init__(self, client: Any, *, paraphrase: int = 0, structured: bool | None = None,
                 labels: Labels = "numbers", shuffle: bool = True, seed: int = 0,
                 max_tokens: int = 64, temperature: float = 0.0, reask: bool = True,
                 name: str | None = None) -> None:
        super().__init__(client, paraphrase=paraphrase, structured=structured,
                         max_tokens=max_tokens, temperature=temperature, reask=reask, name=name,
                         n_paraphrases=N_RANKING_PARAPHRASES)
        self.labels: Labels = labels
        self.shuffle = shuffle
        self.seed = seed

    def _perm(self, value: ValueNode, texts: Sequence[str]) -> list[int]:
        if not self.shuffle:
            return list(range(len(texts)))
        return display_permutation(value.id + "\x1e" + "\x1e".join(texts), len(texts), self.seed)

    def requests(self, value: ValueNode, windows: Sequence[Sequence[str]]) -> list[Any]:
        """The first-attempt requests for ``windows`` (for cost estimates; nothing is sent)."""
        return [self._request(ranking_messages(value, [w[j] for j in self._perm(value, w)],
                                               paraphrase=self.paraphrase, labels=self.labels),
                              ranking_schema(len(w), self.labels)) for w in windows]

    async def rank(self, value: ValueNode, texts: list[str]) -> RankOutcome:
        """Rank one window; see :meth:`rank_many`."""
        return (await self.rank_many(value, [texts], progress=False))[0]

    async def rank_many(self, value: ValueNode, windows: Sequence[Sequence[str]], *,
                        progress: bool = False) -> list[RankOutcome]:
        """Rank many windows of one value with concurrent calls; one outcome per window."""
        perms = [self._perm(value, w) for w in windows]
        messages = [ranking_messages(value, [w[j] for j in p], paraphrase=self.paraphrase,
                                     labels=self.labels) for w, p in zip(windows, perms, strict=True)]
        schemas = [ranking_schema(len(w), self.labels) for w in windows]
        def readable(i: int, text: str) -> bool:
            return _readable(lambda: parse_ranking(text, len(windows[i]), self.labels))

        first = await self._send([self._request(m, s) for m, s in zip(messages, schemas,
                                                                      strict=True)], progress,
                                 readable)
        outcomes: list[RankOutcome | None] = [None] * len(windows)
        retry: list[tuple[int, str, str]] = []
        for i, res in enumerate(first):
            if res.error is not None:
                outcomes[i] = RankOutcome.failure(f"judge call failed: {res.error}")
                continue
            try:
                shown = parse_ranking(res.text, len(windows[i]), self.labels)
                outcomes[i] = RankOutcome(tuple(perms[i][j] for j in shown), raw=res.text)
            except ParseError as exc:
                if self.reask:
                    retry.append((i, res.text, exc.reason))
                else:
                    outcomes[i] = RankOutcome.failure(f"unreadable ranking: {exc.reason}",
                                                      raw=res.text)
        reqs = [self._request(messages[i] + [
            {"role": "assistant", "content": text},
            {"role": "user", "content": ranking_correction(reason, len(windows[i]), self.labels)},
        ], schemas[i]) for i, text, reason in retry]
        def readable_again(j: int, text: str) -> bool:
            return readable(retry[j][0], text)

        for (i, _text, _reason), res in zip(retry, await self._send(reqs, False,
                                                                    readable_again),
                                            strict=True):
            if res.error is not None:
                outcomes[i] = RankOutcome.failure(f"judge call failed on re-ask: {res.error}",
                                                  attempts=2)
                continue
            try:
                shown = parse_ranking(res.text, len(windows[i]), self.labels)
                outcomes[i] = RankOutcome(tuple(perms[i][j] for j in shown), attempts=2,
                                          raw=res.text)
            except ParseError as exc:
                outcomes[i] = RankOutcome.failure(
                    f"unreadable ranking after a corrective re-ask: {exc.reason}", attempts=2,
                    raw=res.text)
        return [o if o is not None else RankOutcome.failure("no answer") for o in outcomes]


class LLMRatingJudge(_LLMJudgeBase):
    """An LLM asked for one rating in [-10, 10] per text: the rating baseline.

    Same arguments as :class:`LLMRankingJudge` (no window, so no labels or shuffling).
    """

    def __init__(self, client: Any, *, paraphrase: int = 0, structured: bool | None = None,
                 max_tokens: int = 16, temperature: float = 0.0, reask: bool = True,
                 name: str | None = None) -> None:
        super().__init__(client, paraphrase=paraphrase, structured=structured,
                         max_tokens=max_tokens, temperature=temperature, reask=reask, name=name,
                         n_paraphrases=N_RATING_PARAPHRASES)

    def requests(self, value: ValueNode, texts: Sequence[str]) -> list[Any]:
        """The first-attempt requests for ``texts`` (for cost estimates; nothing is sent)."""
        return [self._request(rating_messages(value, t, paraphrase=self.paraphrase),
                              rating_schema()) for t in texts]

    async def rate(self, value: ValueNode, text: str) -> RateOutcome:
        """Rate one text; see :meth:`rate_many`."""
        return (await self.rate_many(value, [text], progress=False))[0]

    async def rate_many(self, value: ValueNode, texts: Sequence[str], *,
                        progress: bool = False) -> list[RateOutcome]:
        """Rate many texts of one value with concurrent calls; one outcome per text."""
        messages = [rating_messages(value, t, paraphrase=self.paraphrase) for t in texts]
        schema = rating_schema()
        def readable(_i: int, text: str) -> bool:
            return _readable(lambda: parse_rating(text))

        first = await self._send([self._request(m, schema) for m in messages], progress,
                                 readable)
        outcomes: list[RateOutcome | None] = [None] * len(texts)
        retry: list[tuple[int, str, str]] = []
        for i, res in enumerate(first):
            if res.error is not None:
                outcomes[i] = RateOutcome.failure(f"judge call failed: {res.error}")
                continue
            try:
                outcomes[i] = RateOutcome(parse_rating(res.text), raw=res.text)
            except ParseError as exc:
                if self.reask:
                    retry.append((i, res.text, exc.reason))
                else:
                    outcomes[i] = RateOutcome.failure(f"unreadable rating: {exc.reason}",
                                                      raw=res.text)
        reqs = [self._request(messages[i] + [
            {"role": "assistant", "content": text},
            {"role": "user", "content": rating_correction(reason)},
        ], schema) for i, text, reason in retry]
        for (i, _t, _r), res in zip(retry, await self._send(reqs, False, readable),
                                    strict=True):
            if res.error is not None:
                outcomes[i] = RateOutcome.failure(f"judge call failed on re-ask: {res.error}",
                                                  attempts=2)
                continue
            try:
                outcomes[i] = RateOutcome(parse_rating(res.text), attempts=2, raw=res.text)
            except ParseError as exc:
                outcomes[i] = RateOutcome.failure(
                    f"unreadable rating after a corrective re-ask: {exc.reason}", attempts=2,
                    raw=res.text)
        return [o if o is not None else RateOutcome.failure("no answer") for o in outcomes]
