from __future__ import annotations

import pandas as pd
import pytest

from valueflow.errors import DataError
from valueflow.steer import (
    ExemplarPool,
    default_queries,
    intensity_to_level,
    latin_square,
    load_config,
    plan_steering,
)
from valueflow.steer._prompts import build_messages, value_instruction
from valueflow.theories import ValueNode, resolve_value


def test_level_zero_is_neutral_and_differs_from_endorsement():
    v = resolve_value("benevolence")
    zero = build_messages("Should I help my brother move?", targets=[(v, 0)])[0]["content"]
    assert "neutral" in zero
    for lvl in (-2, -1, 1, 2):
        assert value_instruction(v, lvl) not in zero
    for endorsing in ("strongly value", "somewhat value", "you value", "matters deeply"):
        assert endorsing not in zero.lower()


def test_fallback_phrasing_for_values_without_phrasings():
    node = ValueNode(id="mine:thrift", theory="mine", node="thrift", name="Thrift",
                     definition="Careful use of money and resources.")
    zero = value_instruction(node, 0)
    assert "neutral about Thrift" in zero and "strongly" not in zero
    assert value_instruction(node, 2).startswith("You strongly value Thrift")
    assert value_instruction(node, -2).startswith("You strongly oppose Thrift")


def test_default_and_steered_share_the_user_message():
    v = resolve_value("power")
    d = build_messages("Q?", word_limit=50)
    s = build_messages("Q?", targets=[(v, 2)], word_limit=50)
    assert d == [s[1]] and s[0]["role"] == "system"
    u = build_messages("Q?", targets=[(v, 2)], word_limit=50, instruction_role="user")
    assert len(u) == 1 and u[0]["content"].endswith(d[0]["content"])


def test_multi_value_lines_are_full_sentences():
    a, b = resolve_value("benevolence"), resolve_value("power")
    text = build_messages("Q?", targets=[(a, 2), (b, -1)])[0]["content"]
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert lines == [f"- {value_instruction(a, 2)}", f"- {value_instruction(b, -1)}"]


def test_latin_square_each_value_takes_each_level_once():
    vals = ["a", "b", "c", "d", "e"]
    levels = [2, 1, 1, -1, -2]
    sq = latin_square(vals, levels)
    assert len(sq) == 5
    for s in sq:  # each set is a permutation of the levels
        assert sorted(lv for _, lv in s) == sorted(levels)
    for i, v in enumerate(vals):  # each value takes each position of `levels` once
        got = [dict(s)[v] for s in sq]
        assert sorted(got) == sorted(levels)
        assert [levels[(i - s) % 5] for s in range(5)] == got
    assert [lv for _, lv in sq[1]] == [-2, 2, 1, 1, -1]  # set 2 of the paper's figure


def test_level_bins():
    assert [intensity_to_level(x) for x in (-10, -6, -5.9, -2, -1.9, 0, 1.9, 2, 5.9, 6, 10)] == \
        [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, 2]


def test_user_text_exemplars_come_from_the_bin_and_vary_by_query():
    cfg = load_config({"models": ["scripted"], "values": ["benevolence"], "levels": [-2, 2],
                       "regimes": ["user_text"], "queries": {"limit": 8},
                       "user_text": {"n_exemplars": 2}})
    plan = plan_steering(cfg)
    from valueflow.vidb import load_seed

    ref = load_seed(["schwartz:benevolence"])
    pool = ExemplarPool(ref)
    sets = []
    for t in plan.trials:
        if t.condition.regime != "user_text":
            continue
        lv = t.condition.targets[0][1]
        content = t.messages[0]["content"]
        quoted = [ln[3:-1] for ln in content.splitlines() if ln.startswith('- "')]
        assert len(quoted) == 2 and len(set(quoted)) == 2
        allowed = {" ".join(x.split()) for x in pool.texts("schwartz:benevolence", lv)}
        assert set(quoted) <= allowed
        assert t.messages[0]["role"] == "user" and len(t.messages) == 1
        sets.append((lv, tuple(quoted)))
    plus = [s for lv, s in sets if lv == 2]
    assert len(plus) == 8 and len(set(plus)) > 1  # fresh draws per query


def test_too_few_exemplars_is_a_clear_error(tmp_path):
    f = tmp_path / "vidb.csv"
    pd.DataFrame({"text": ["kind words", "more kind words", "a neutral remark"],
                  "value": ["benevolence"] * 3, "intensity": [8, 7, 0]}).to_csv(f, index=False)
    cfg = load_config({"models": ["scripted"], "values": ["benevolence"], "levels": [-2, 2],
                       "regimes": ["user_text"], "queries": {"limit": 2},
                       "user_text": {"n_exemplars": 2, "vidb": str(f)}})
    with pytest.raises(DataError, match=r"0 text\(s\) of schwartz:benevolence .*level -2 bin"):
        plan_steering(cfg)


def test_default_query_set_is_large_and_diverse():
    qs = default_queries()
    assert len(qs) >= 100 and len({q.text for q in qs}) == len(qs)
    assert len({q.category for q in qs}) >= 8


def test_query_limit_spreads_over_categories(tmp_path):
    cfg = load_config({"models": ["scripted"], "values": ["power"], "queries": {"limit": 9}})
    plan = plan_steering(cfg)
    assert len({q.category for q in plan.queries}) == 9


def test_user_query_file(tmp_path):
    f = tmp_path / "mine.csv"
    pd.DataFrame({"query": ["What is fair?", "", "Is it brave to quit?"]}).to_csv(f, index=False)
    cfg = load_config({"models": ["scripted"], "values": ["power"],
                       "queries": {"sets": [str(f)]}})
    qs = plan_steering(cfg).queries
    assert [q.text for q in qs] == ["What is fair?", "Is it brave to quit?"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"question": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="no `query` or `text` column"):
        plan_steering(load_config({"models": ["scripted"], "values": ["power"],
                                   "queries": {"sets": [str(bad)]}}))


def test_profile_regime_turns_intensities_into_levels(tmp_path):
    f = tmp_path / "profile.csv"
    pd.DataFrame({"value": ["benevolence", "power", "security", "schwartz:tradition"],
                  "intensity": [7.5, -4.0, 0.5, -9.0]}).to_csv(f, index=False)
    cfg = load_config({"models": ["scripted"], "regimes": ["profile"],
                       "profile": {"path": str(f), "top": 3}})
    cond = next(c for c in plan_steering(cfg).conditions if c.regime == "profile")
    assert cond.targets == (("schwartz:tradition", -2), ("schwartz:benevolence", 2),
                            ("schwartz:power", -1))
