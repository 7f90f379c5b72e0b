"""Planning a VIDB build: its settings, each value's texts and windows, and what it would cost.

Everything here is pure: no judge is asked and nothing is read or written. The build
(:func:`~valueflow.vidb.build_vidb`) and its cost estimate (:func:`estimate_build_cost`,
used by ``valueflow vidb build --dry-run``) go through the same steps — the same text
cleaning, the same anchors, the same windows — so the estimate counts the windows the build
will send.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from valueflow.errors import ConfigError, DataError
from valueflow.ranking import balanced_windows
from valueflow.tables import text_key
from valueflow.vidb._build_calibrate import NEUTRAL_ANCHOR_TEXTS, ScaleMode
from valueflow.vidb._build_flags import FlagThresholds

if TYPE_CHECKING:
    from valueflow.theories import ValueNode

__all__ = ["BuildConfig", "BuildCost", "ValuePlan", "estimate_build_cost", "plan_value"]

IntArray = NDArray[np.int64]

Texts = Sequence[str] | Mapping[str, Sequence[str]]
References = Sequence[tuple[str, float]] | Mapping[str, Sequence[tuple[str, float]]]


class BuildConfig(BaseModel):
    """Settings of a VIDB build (CLI flags and a YAML file share this model)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=4, ge=2)
    """Texts per ranking window (2 = pairwise comparisons)."""
    r: int = Field(default=6, ge=1)
    """Minimum number of windows every text takes part in (per judge with ``assign='all'``)."""
    seed: int = 0
    """Seed of the window design; the same seed and texts give the same windows."""
    assign: Literal["all", "split"] = "all"
    """``all``: every judge ranks every window; ``split``: windows are dealt out among judges
    (cheaper, but per-judge disagreement is then measured on fewer windows)."""
    adaptive: float = Field(default=0.0, ge=0.0)
    """Size of the adaptive round, in extra windows per text: after a first fit, about
    ``adaptive * n / k`` windows of near-tied texts (:func:`~valueflow.ranking.adaptive_windows`)
    are ranked too (0 = no adaptive round)."""
    n_neutral: int = Field(default=6, ge=0, le=len(NEUTRAL_ANCHOR_TEXTS))
    """Built-in neutral anchor texts ranked with each value's texts (when no
    ``neutral_texts`` are given); their median utility is intensity 0."""
    n_panel_neutral: int = Field(default=6, ge=0)
    """With categorisation: texts of the corpus the panel placed in none of a theory's values
    join that theory's values as extra neutral anchors (up to this many, a seeded pick). They
    anchor 0 in the corpus's own register, next to the built-in sentences."""
    scale: ScaleMode = "symmetric"
    """How utilities map to ±10 without references: ``symmetric`` or ``separate``."""
    scale_quantile: float = Field(default=0.98, ge=0.5, le=1.0)
    """Quantile of the distances from neutral that maps to ±10."""
    prior_var: float = Field(default=10.0, gt=0)
    """Variance of the Gaussian prior on Plackett–Luce utilities."""
    disagree_z: float = Field(default=3.0, gt=0)
    """Flag ``judges_disagree`` above this pairwise z-score between judges."""
    min_windows: int | None = Field(default=None, ge=1)
    """Flag ``few_comparisons`` below this many ranked windows (default: ``ceil(r / 2)``)."""
    max_uncertainty: float = Field(default=2.5, gt=0)
    """Flag ``low_confidence`` above this calibrated standard deviation (intensity points)."""
    concurrency: int = Field(default=64, ge=1)
    """Windows in flight per judge (over all values), for judges without ``rank_many``."""

    def thresholds(self) -> FlagThresholds:
        return FlagThresholds(
            disagree_z=self.disagree_z,
            min_windows=self.min_windows or max(1, math.ceil(self.r / 2)),
            max_uncertainty=self.max_uncertainty,
        )

    def adaptive_round(self, n_items: int) -> int:
        """Windows the adaptive round asks for a value of ``n_items`` ranked items."""
        return math.ceil(self.adaptive * n_items / self.k) if self.adaptive > 0 else 0


def value_seed(seed: int, value_id: str) -> int:
    """A value's own seed: values built together get unrelated designs."""
    return int(hashlib.sha1(f"{seed}\x1f{value_id}".encode()).hexdigest()[:8], 16)


def clean_texts(texts: Sequence[str], where: str) -> tuple[list[str], int]:
    """Strip texts, reject empty ones, drop repeats; returns the texts and how many were
    dropped."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        shown = ", ".join(str(i + 1) for i in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise DataError(f"{where}: {len(bad)} empty or non-text entries (rows {shown})",
                        hint="remove the empty rows; nothing was built")
    out: dict[str, str] = {}
    for t in texts:
        out.setdefault(text_key(t), t.strip())
    return list(out.values()), len(texts) - len(out)


def neutral_anchors(neutral_texts: Sequence[str] | None, cfg: BuildConfig) -> list[str]:
    """The given neutral texts (cleaned), or the first ``cfg.n_neutral`` built-in ones."""
    if neutral_texts is None:
        return list(NEUTRAL_ANCHOR_TEXTS[: cfg.n_neutral])
    return clean_texts(list(neutral_texts), "neutral texts")[0]


def references_for(references: References | None, value_id: str) -> list[tuple[str, float]]:
    """The ``(text, intensity)`` reference items that apply to ``value_id``."""
    if references is None:
        return []
    refs = references.get(value_id, []) if isinstance(references, Mapping) else references
    out = [(str(t).strip(), float(y)) for t, y in refs]
    bad = [t for t, y in out if not t or not math.isfinite(y) or abs(y) > 10]
    if bad:
        raise DataError(f"reference items for {value_id} need a text and an intensity in "
                        f"[-10, 10]; {len(bad)} do not")
    return out


def texts_per_value(texts: Texts, values: Sequence[str | ValueNode] | None
                    ) -> list[tuple[ValueNode, list[str]]]:
    """Each value to build with its raw texts (the values resolved, in the order given)."""
    from valueflow.theories import ValueNode, resolve_value

    def node(v: str | ValueNode) -> ValueNode:
        return v if isinstance(v, ValueNode) else resolve_value(v)

    if isinstance(texts, Mapping):
        given = {resolve_value(str(k)).id: list(v) for k, v in texts.items()}
        nodes = [node(v) for v in values or given]
        missing = [n.id for n in nodes if n.id not in given]
        if missing:
            raise DataError(f"no texts were given for {', '.join(missing)}")
        out = [(n, given[n.id]) for n in nodes]
    else:
        if isinstance(texts, str):
            raise DataError("texts must be a list of texts, not one string")
        if not values:
            raise ConfigError("name the value(s) to build", hint="--value benevolence")
        out = [(n, list(texts)) for n in map(node, values)]
    if len({n.id for n, _ in out}) != len(out):
        raise ConfigError("a value is listed twice")
    return out


def pick_panel_neutral(pool: Sequence[str], cfg: BuildConfig, value_id: str) -> list[str]:
    """The seeded pick of texts the panel found neutral that join ``value_id``'s anchors."""
    if not pool or cfg.n_panel_neutral <= 0:
        return []
    rng = np.random.default_rng(value_seed(cfg.seed + 2, value_id))
    pick = rng.choice(len(pool), size=min(cfg.n_panel_neutral, len(pool)), replace=False)
    return [pool[int(i)] for i in sorted(pick)]


def _judges_of(windows: range, n_judges: int, assign: str) -> list[tuple[int, ...]]:
    """Which judges rank each window: all of them, or one each in turn (``split``)."""
    if assign == "all" or n_judges == 1:
        return [tuple(range(n_judges))] * len(windows)
    return [(w % n_judges,) for w in windows]


@dataclass(frozen=True)
class ValuePlan:
    """What one value's build ranks: its texts, the anchors ranked beside them, the windows.

    Item ids index :attr:`all_texts`: the texts, then the neutral anchors, then the
    references.

    Attributes:
        value: The value.
        texts: The texts to build items for (cleaned; after categorisation, if any).
        neutral: Neutral anchor texts (those equal to one of ``texts`` left out).
        refs: ``(text, intensity)`` reference items (those equal to a text left out).
        windows: ``(W, k)`` item ids of each window.
        judges_of: For each window, the indices of the judges that rank it.
        n_input: Distinct texts given for the value (before categorisation).
        n_excluded: Texts given but not built: repeats, and texts the panel placed elsewhere.
    """

    value: ValueNode
    texts: list[str]
    neutral: list[str]
    refs: list[tuple[str, float]]
    windows: IntArray
    judges_of: list[tuple[int, ...]]
    n_input: int
    n_excluded: int = 0

    @property
    def all_texts(self) -> list[str]:
        return self.texts + self.neutral + [t for t, _ in self.refs]

    @property
    def n(self) -> int:
        return len(self.texts) + len(self.neutral) + len(self.refs)

    def with_round(self, extra: IntArray, n_judges: int, assign: str) -> ValuePlan:
        """This plan with another round of windows (the adaptive round) after its own."""
        start = len(self.windows)
        windows = np.concatenate([self.windows, extra.reshape(-1, self.windows.shape[1])])
        return replace(self, windows=windows, judges_of=self.judges_of + _judges_of(
            range(start, len(windows)), n_judges, assign))


def plan_value(value: ValueNode, texts: list[str], cfg: BuildConfig, n_judges: int, *,
               neutral: Sequence[str] = (), refs: Sequence[tuple[str, float]] = (),
               n_input: int | None = None, n_excluded: int = 0,
               categorised: bool = False) -> ValuePlan:
    """The first-round plan of one value: anchors beside its texts and a balanced design.

    Raises:
        DataError: Fewer than 2 texts to rank (``categorised``: left by the panel).
    """
    if len(texts) < 2:
        raise DataError(f"{value.id} has {len(texts)} text(s) to rank"
                        + (" after categorisation" if categorised else ""),
                        hint="a value needs at least 2 distinct texts")
    seen = {text_key(t) for t in texts}
    kept_neutral = [t for t in neutral if text_key(t) not in seen]
    kept_refs = [(t, y) for t, y in refs if text_key(t) not in seen]
    n = len(texts) + len(kept_neutral) + len(kept_refs)
    windows = balanced_windows(n, cfg.k, cfg.r, seed=value_seed(cfg.seed, value.id))
    return ValuePlan(value, list(texts), kept_neutral, kept_refs, windows,
                     _judges_of(range(len(windows)), n_judges, cfg.assign),
                     len(texts) if n_input is None else n_input, n_excluded)


# -- cost --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildCost:
    """What building one value would ask of its judges (see :func:`estimate_build_cost`).

    Attributes:
        value: Canonical value id.
        n_texts: Distinct texts to build items for.
        n_neutral: Neutral anchors ranked beside them (with a panel: at most this many).
        n_reference: Reference items ranked beside them.
        n_windows: Windows of the first round (exact without a panel).
        n_adaptive_windows: Windows of the adaptive round (at most this many).
        judge_calls: Window rankings asked of all judges together, both rounds.
        llm_calls: Those asked of LLM judges (simulated judges cost nothing).
        prompt_tokens: Approximate prompt tokens of the LLM calls (about 4 characters per
            token of the default ranking prompt), before the cache: a rerun sends fewer.
        panel_calls_per_level: Categorisation calls per level of the theory (0 without a
            panel).
        exact: The counts are those the build will send (no panel and no adaptive round);
            otherwise they are upper bounds.
    """

    value: str
    n_texts: int
    n_neutral: int
    n_reference: int
    n_windows: int
    n_adaptive_windows: int
    judge_calls: int
    llm_calls: int
    prompt_tokens: int
    panel_calls_per_level: int
    exact: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _window_chars(value: ValueNode, k: int) -> tuple[int, list[str]]:
    """Characters of a ranking prompt for ``k`` texts apart from the texts themselves."""
    from valueflow.judges import ranking_messages

    messages = ranking_messages(value, ["x"] * k)
    return sum(len(m["content"]) for m in messages) - k, [m["role"] for m in messages]


def _cost(plan: ValuePlan, cfg: BuildConfig, simulated: frozenset[int], n_panel: int,
          exact: bool) -> BuildCost:
    from valueflow.judges import clean_text

    k = plan.windows.shape[1]
    fixed, roles = _window_chars(plan.value, k)
    lengths = np.array([len(clean_text(t)) for t in plan.all_texts], dtype=np.int64)
    # Per message about 4 characters a token, plus a few tokens of chat formatting.
    tokens = (fixed + lengths[plan.windows].sum(axis=1)) / 4 + 4 * len(roles)
    n_llm = np.array([sum(j not in simulated for j in js) for js in plan.judges_of])
    n_judges = np.array([len(js) for js in plan.judges_of])
    n_extra = min(cfg.adaptive_round(plan.n), max(plan.n - k + 1, 0))
    # The adaptive round deals its windows like the first one: the same share per window.
    scale = 1.0 + n_extra / len(plan.windows)
    return BuildCost(
        value=plan.value.id, n_texts=len(plan.texts), n_neutral=len(plan.neutral),
        n_reference=len(plan.refs), n_windows=len(plan.windows), n_adaptive_windows=n_extra,
        judge_calls=round(n_judges.sum() * scale), llm_calls=round(n_llm.sum() * scale),
        prompt_tokens=round(float((tokens * n_llm).sum()) * scale),
        panel_calls_per_level=len(plan.texts) * n_panel, exact=exact and n_extra == 0)


def estimate_build_cost(
    texts: Texts,
    values: Sequence[str | ValueNode] | None = None,
    *,
    config: BuildConfig | None = None,
    n_judges: int = 1,
    simulated: Sequence[int] = (),
    neutral_texts: Sequence[str] | None = None,
    references: References | None = None,
    n_panel: int = 0,
) -> list[BuildCost]:
    """Windows, judge calls and prompt tokens a :func:`~valueflow.vidb.build_vidb` would
    spend, per value, without asking anyone (pure; ``valueflow vidb build --dry-run``).

    The windows are planned exactly as the build plans them. With a panel the texts it
    would set aside are not known in advance, so every text is counted, with the most
    panel-neutral anchors it could add; the adaptive round is counted at its largest.

    Args:
        texts, values, neutral_texts, references: As for :func:`~valueflow.vidb.build_vidb`.
        config: The build's settings.
        n_judges: Ranking judges.
        simulated: Indices (among the ``n_judges``) of simulated judges, whose rankings cost
            no tokens.
        n_panel: Members of the categorisation panel (0: no categorisation).

    Raises:
        ConfigError, DataError, UnknownNameError: The build would refuse these inputs.
    """
    cfg = config or BuildConfig()
    if n_judges < 1:
        raise ConfigError(f"a build needs at least one judge, got n_judges={n_judges}")
    if any(not 0 <= j < n_judges for j in simulated):
        raise ConfigError(f"simulated judges are indices in 0..{n_judges - 1}, got "
                          f"{list(simulated)}")
    neutral = neutral_anchors(neutral_texts, cfg)
    out = []
    for node, raw in texts_per_value(texts, values):
        cleaned, dropped = clean_texts(raw, f"texts for {node.id}")
        extra: list[str] = []
        if n_panel > 0 and cfg.n_panel_neutral > 0:
            # Stand-ins of the corpus's mean length for the corpus texts the panel may add.
            mean = round(sum(map(len, cleaned)) / max(len(cleaned), 1))
            extra = ["·" * mean] * cfg.n_panel_neutral
        plan = plan_value(node, cleaned, cfg, n_judges, neutral=neutral + extra,
                          refs=references_for(references, node.id), n_excluded=dropped)
        out.append(_cost(plan, cfg, frozenset(simulated), n_panel, exact=n_panel == 0))
    return out
