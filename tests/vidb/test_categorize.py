from __future__ import annotations

import json

import pytest

from valueflow.errors import ConfigError
from valueflow.llm import LLMClient, ScriptedBackend
from valueflow.theories import get_registry
from valueflow.vidb import AcceptanceRule, PanelCategorizer
from valueflow.vidb._categorize import (
    NEUTRAL,
    Vote,
    aggregate_votes,
    categorization_messages,
    parse_vote,
)

MFT = get_registry().theory("mft")
ROOTS = MFT.roots()
CARE, FAIR = ROOTS[0].id, ROOTS[1].id


def votes(*spec: str | None) -> list[Vote]:
    return [Vote(s, "supports" if s not in (None, NEUTRAL) else None) for s in spec]


# -- acceptance rule ---------------------------------------------------------------------

def test_five_of_seven_accepts():
    d = aggregate_votes(votes(*[CARE] * 5, FAIR, FAIR), AcceptanceRule(5, None))
    assert d.accepted and d.choice == CARE and d.counts == {CARE: 5, FAIR: 2}


def test_four_of_seven_needs_margin():
    v = votes(CARE, CARE, CARE, CARE, FAIR, FAIR, NEUTRAL)
    assert not aggregate_votes(v, AcceptanceRule(5, None)).accepted
    assert aggregate_votes(v, AcceptanceRule(5, 2)).choice == CARE
    assert not aggregate_votes(votes(CARE, CARE, CARE, FAIR, FAIR, FAIR, NEUTRAL),
                               AcceptanceRule(5, 2)).accepted


def test_tie_is_never_accepted_even_with_low_min_agree():
    assert not aggregate_votes(votes(CARE, CARE, FAIR, FAIR), AcceptanceRule(2, 1)).accepted


def test_invalid_votes_count_for_nothing():
    d = aggregate_votes(votes(CARE, CARE, None, None, None, None, None), AcceptanceRule(5, 2))
    assert d.accepted and d.counts["invalid"] == 5  # lead of 2 over nothing
    assert not aggregate_votes(votes(None, None), AcceptanceRule(1, 1)).accepted


def test_neutral_wins_and_direction_is_majority_of_the_winners():
    assert aggregate_votes(votes(NEUTRAL, NEUTRAL, NEUTRAL, CARE), AcceptanceRule(3)).choice == NEUTRAL
    v = [Vote(CARE, "opposes"), Vote(CARE, "opposes"), Vote(CARE, "supports"), Vote(FAIR, "supports")]
    d = aggregate_votes(v, AcceptanceRule(3))
    assert d.direction == "opposes" and d.direction_counts == {"opposes": 2, "supports": 1}
    split = [Vote(CARE, "opposes"), Vote(CARE, "supports"), Vote(CARE, None)]
    assert aggregate_votes(split, AcceptanceRule(3)).direction is None


def test_rule_for_panel_and_validation():
    assert AcceptanceRule.for_panel(7) == AcceptanceRule(5, 2)
    assert AcceptanceRule.for_panel(3).min_agree == 3 and AcceptanceRule.for_panel(3).min_margin is None
    with pytest.raises(ConfigError, match="min_agree"):
        AcceptanceRule(0)


# -- parsing -----------------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "choice", "direction"), [
    ('{"choice": 1, "direction": "supports"}', CARE, "supports"),
    ('Sure! {"choice": "2", "direction": "opposes"}', FAIR, "opposes"),
    ("**Choice:** [2]\nDirection: opposes", FAIR, "opposes"),
    ("Care/Harm (supports)", CARE, "supports"),
    ("care_harm - opposes", CARE, "opposes"),
    ("Fairnes/Cheating", FAIR, None),          # close misspelling of one option
    ('{"choice": 0, "direction": "neutral"}', NEUTRAL, None),
    ("Selected: None", NEUTRAL, None),
])
def test_parse_vote_accepts_ids_names_and_close_misspellings(answer, choice, direction):
    assert parse_vote(answer, ROOTS) == Vote(choice, direction)


@pytest.mark.parametrize("answer", [
    "fair",            # a substring of one name is not a match (the reference's bug)
    '{"choice": 17}',  # out of range
    "I am not sure which one applies here.\nMaybe several.",
    "",
])
def test_parse_vote_rejects_guesses(answer):
    assert parse_vote(answer, ROOTS).choice is None


def test_prompt_names_options_neutral_and_text():
    msgs = categorization_messages("A text.", MFT, None, ROOTS)
    body = msgs[-1]["content"]
    assert "[0] None of these" in body and "[1] Care/Harm" in body and "A text." in body


# -- the panel ---------------------------------------------------------------------------

def _member(name: str, pick, calls: list | None = None) -> LLMClient:
    """A scripted panel member: ``pick(text, option names) -> (number, direction)``."""

    def fn(req):
        body = req.messages[-1]["content"]
        text = body.split('"""')[1]
        names = [ln.split("] ", 1)[1].split(":")[0] for ln in body.splitlines()
                 if ln.startswith("[") and not ln.startswith("[0]")]
        num, direction = pick(text, names)
        return json.dumps({"choice": num, "direction": direction})

    return LLMClient(ScriptedBackend(name, fn=fn))


def _care_picker(text, names):
    if "weather" in text:
        return 0, "neutral"
    if "Care/Harm" in names:
        return names.index("Care/Harm") + 1, "opposes" if "hurt" in text else "supports"
    return 1, "opposes" if "hurt" in text else "supports"


def test_panel_descends_to_a_leaf_or_stops_on_neutral():
    panel = [_member(f"m{i}", _care_picker) for i in range(3)]
    cat = PanelCategorizer(panel, AcceptanceRule(2, None))
    from valueflow.llm import run_sync

    res = run_sync(cat.categorize(["They hurt the puppy.", "The weather is mild."], MFT))
    hurt, weather = res
    assert hurt.path[0] == CARE and hurt.stop == "leaf" and len(hurt.path) == MFT.depth
    assert hurt.direction == "opposes" and hurt.is_about(CARE, MFT)
    assert weather.path == () and weather.stop == "neutral" and not weather.is_about(CARE, MFT)
    assert hurt.levels[0].counts == {CARE: 3}


def test_panel_stops_without_agreement():
    def other(text, names):
        return 2, "supports"

    panel = [_member("a", _care_picker), _member("b", other), _member("c", lambda t, n: (3, "supports"))]
    from valueflow.llm import run_sync

    (res,) = run_sync(PanelCategorizer(panel, AcceptanceRule(2, None)).categorize(["Hi."], MFT))
    assert res.stop == "no_agreement" and res.path == ()


def test_same_model_twice_is_refused_unless_allowed():
    a = LLMClient(ScriptedBackend("same", fn=lambda r: "0"))
    b = LLMClient(ScriptedBackend("same", fn=lambda r: "0"))
    with pytest.raises(ConfigError, match="more than once"):
        PanelCategorizer([a, b])
    cat = PanelCategorizer([a, b], allow_same_model=True)
    assert cat._request(1, "t", MFT, None, ROOTS).sample_index == 1


def test_rerun_hits_the_cache(tmp_workspace):
    from valueflow.llm import run_sync

    backends = [ScriptedBackend(f"m{i}", fn=lambda r: '{"choice": 0, "direction": "neutral"}')
                for i in range(3)]
    texts = ["One text.", "Another text."]
    for _ in range(2):
        panel = [LLMClient(b, workspace=tmp_workspace) for b in backends]
        run_sync(PanelCategorizer(panel, AcceptanceRule(2, None)).categorize(texts, MFT))
    assert [len(b.requests) for b in backends] == [2, 2, 2]
