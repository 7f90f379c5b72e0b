"""LLMs (and simulations) as judges of value intensity: ranking and rating.

A ranking judge orders a window of texts from the one that most supports a value to the one
that most opposes it; the evaluator and the VIDB build pipeline turn such rankings into
calibrated intensities. A rating judge gives one number in [-10, 10] per text (the
baseline that ranking is compared with). A direct scorer (the local scorer from
:mod:`valueflow.embed`) predicts intensities without any window.

Example:
    >>> from valueflow.judges import SimulatedTextJudge
    >>> judge = SimulatedTextJudge({"kind": 8.0, "cruel": -8.0}, beta=5.0)
"""

from valueflow.judges._factory import (
    LOCAL_SCORER_FACTORY,
    Method,
    judge_from_options,
    make_judge,
)
from valueflow.judges._llm import (
    LLMRankingJudge,
    LLMRatingJudge,
    display_permutation,
    supports_json_schema,
)
from valueflow.judges._parse import ParseError, parse_ranking, parse_rating
from valueflow.judges._prompts import (
    MAX_TEXT_CHARS,
    N_RANKING_PARAPHRASES,
    N_RATING_PARAPHRASES,
    clean_text,
    long_text_note,
    ranking_messages,
    ranking_schema,
    rating_messages,
    rating_schema,
)
from valueflow.judges._sim import SimulatedRatingJudge, SimulatedTextJudge
from valueflow.judges._types import (
    DirectScorer,
    RankingJudge,
    RankOutcome,
    RateOutcome,
    RatingJudge,
)

__all__ = [
    "LOCAL_SCORER_FACTORY",
    "MAX_TEXT_CHARS",
    "N_RANKING_PARAPHRASES",
    "N_RATING_PARAPHRASES",
    "DirectScorer",
    "LLMRankingJudge",
    "LLMRatingJudge",
    "Method",
    "ParseError",
    "RankOutcome",
    "RankingJudge",
    "RateOutcome",
    "RatingJudge",
    "SimulatedRatingJudge",
    "SimulatedTextJudge",
    "clean_text",
    "display_permutation",
    "judge_from_options",
    "long_text_note",
    "make_judge",
    "parse_ranking",
    "parse_rating",
    "ranking_messages",
    "ranking_schema",
    "rating_messages",
    "rating_schema",
    "supports_json_schema",
]
