"""The shipped theory data: structure, evaluation values, phrasings and anchors."""

from __future__ import annotations

import re

import pytest

from valueflow.theories import PHRASING_LEVELS, get_registry

# Written out independently of the package constant, from the developer guide.
EVALUATION_VALUES = [
    "schwartz:benevolence", "schwartz:universalism", "schwartz:self_direction",
    "schwartz:stimulation", "schwartz:hedonism", "schwartz:achievement", "schwartz:power",
    "schwartz:face", "schwartz:security", "schwartz:conformity", "schwartz:tradition",
    "schwartz:humility",
    "mft:care_harm", "mft:fairness_cheating", "mft:loyalty_betrayal", "mft:authority_subversion",
    "mft:sanctity_degradation", "mft:liberty_oppression",
    "ross:fidelity", "ross:reparation", "ross:gratitude", "ross:justice", "ross:beneficence",
    "ross:self_improvement", "ross:non_maleficence",
    "rights:civil_rights", "rights:political_rights", "rights:economic_rights",
    "rights:social_rights", "rights:cultural_rights", "rights:national_solidarity_rights",
    "rights:social_group_solidarity_rights",
]


@pytest.fixture(scope="module")
def reg():
    return get_registry()


@pytest.mark.parametrize(("key", "count", "per_level"), [
    ("schwartz", 31, [2, 4, 12, 13]),
    ("mft", 32, [6, 26]),
    ("ross", 7, [7]),
    ("rights", 40, [3, 7, 30]),
])
def test_node_counts_and_levels(reg, key, count, per_level):
    t = reg.theory(key)
    assert len(t) == count
    assert [len(t.at_level(lvl)) for lvl in range(1, t.depth + 1)] == per_level


@pytest.mark.parametrize(("key", "label"), [
    ("schwartz", "Value"), ("mft", "Foundation"), ("ross", "Duty"), ("rights", "Right")])
def test_labels(reg, key, label):
    assert reg.theory(key).label == label


def test_schwartz_multi_parent_nodes(reg):
    t = reg.theory("schwartz")
    multi = {n.node: set(n.parents) for n in t if len(n.parents) > 1}
    assert multi == {
        "humility": {"schwartz:self_transcendence", "schwartz:conservation"},
        "hedonism": {"schwartz:openness_to_change", "schwartz:self_enhancement"},
        "face": {"schwartz:self_enhancement", "schwartz:conservation"},
    }
    assert all(t.node(n).level == 3 for n in multi)
    # Reached from both higher-order values, and from both level-1 values for humility/face.
    assert {a.node for a in t.ancestors("humility")} == {
        "growth", "self_protection", "self_transcendence", "conservation"}
    assert {n.node for n in t.children("self_enhancement")} == {
        "achievement", "power", "hedonism", "face"}


def test_schwartz_sub_values_sit_under_their_basic_value(reg):
    t = reg.theory("schwartz")
    subs = t.at_level(4)
    assert {n.parents[0].split(":")[1] for n in subs} == {
        "benevolence", "universalism", "conformity", "security", "power", "self_direction"}
    for n in subs:
        (parent,) = n.parents
        assert n.node.startswith(parent.split(":")[1] + "_")
        assert [p.node for p in t.path(n.id)][-2] == parent.split(":")[1]


def test_mft_and_rights_shape(reg):
    mft = reg.theory("mft")
    assert {r.node: len(mft.children(r.id)) for r in mft.roots()} == {
        "care_harm": 4, "fairness_cheating": 5, "loyalty_betrayal": 4,
        "authority_subversion": 4, "sanctity_degradation": 5, "liberty_oppression": 4}
    rights = reg.theory("rights")
    assert {n.node: len(rights.children(n.id)) for n in rights.at_level(2)} == {
        "civil_rights": 6, "political_rights": 6, "economic_rights": 4, "social_rights": 4,
        "cultural_rights": 3, "national_solidarity_rights": 3,
        "social_group_solidarity_rights": 4}
    assert [n.node for n in rights.path("emerging_right_to_democracy")] == [
        "third_generation", "social_group_solidarity_rights", "emerging_right_to_democracy"]


def test_every_definition_is_present_distinct_and_a_sentence(reg):
    defs = [n.definition for n in reg.nodes()]
    assert len(defs) == 110
    assert len(set(defs)) == len(defs)
    for n in reg.nodes():
        assert len(n.definition.split()) >= 5, n.id
        assert n.definition[0].isupper() and n.definition.endswith("."), n.id


def test_evaluation_values_are_the_32(reg):
    assert [n.id for n in reg.evaluation_values()] == EVALUATION_VALUES
    from valueflow.theories import evaluation_values

    assert [n.id for n in evaluation_values()] == EVALUATION_VALUES
    # Only evaluation values carry phrasings in the built-in data.
    assert {n.id for n in reg.nodes() if n.phrasings} == set(EVALUATION_VALUES)


@pytest.mark.parametrize("value_id", EVALUATION_VALUES)
def test_judge_definition(reg, value_id):
    jd = reg.get(value_id).judge_definition
    assert jd is not None
    sentences = [s for s in re.split(r"(?<=\.)\s+", jd) if s]
    assert 2 <= len(sentences) <= 3
    assert "supports" in jd and "opposes" in jd
    assert jd != reg.get(value_id).definition


_STANCE = re.compile(r"\b(strongly|somewhat|mildly|deeply|firmly)\b", re.I)
_ENDORSE = re.compile(r"\byou (\w+ )?(value|values|oppose|reject|prize|cherish|favour)\b", re.I)


@pytest.mark.parametrize("value_id", EVALUATION_VALUES)
def test_phrasings_are_graded(reg, value_id):
    node = reg.get(value_id)
    p = node.phrasings
    assert sorted(p) == list(PHRASING_LEVELS)
    assert len(set(p.values())) == 5
    topic = re.split(r"[/ ]", node.name)[0].lower()
    for lvl, text in p.items():
        assert text.startswith("You ") and text.endswith("."), (lvl, text)
        assert topic in text.lower(), (lvl, text)
        assert "  " not in text and ".." not in text
    assert p[2].startswith("You strongly value")
    assert p[-2].startswith("You strongly oppose")
    assert re.match(r"You somewhat value\b", p[1])
    assert re.match(r"You (are )?(mildly|somewhat) \w+", p[-1])
    assert "strongly" not in p[1] and "strongly" not in p[-1]


@pytest.mark.parametrize("value_id", EVALUATION_VALUES)
def test_level_zero_is_neutral(reg, value_id):
    text = reg.get(value_id).phrasings[0]
    assert text.startswith("You are neutral about")
    assert re.search(r"\bneither\b.*\bnor\b", text)
    assert not _STANCE.search(text), text
    assert not _ENDORSE.search(text), text


def test_anchors(reg):
    anchors = reg.anchors
    assert len(anchors) >= 60
    assert len({a.id for a in anchors}) == len(anchors)
    assert len({frozenset(a.members) for a in anchors}) == len(anchors)
    for a in anchors:
        assert len({m.split(":")[0] for m in a.members}) >= 2, a.id
        assert all(m in reg for m in a.members), a.id
        assert len(set(a.members)) == len(a.members)
        assert a.description.endswith(".") and ". " not in a.description, a.id
    # Every evaluation value takes part in at least one anchor, and every theory in many.
    members = {m for a in anchors for m in a.members}
    assert set(EVALUATION_VALUES) <= members
    for t in reg:
        assert sum(1 for a in anchors if t.key in a.theories) >= 15, t.key


def test_known_anchor_is_semantically_placed(reg):
    ids = {a.id for a in reg.anchors_for("schwartz:benevolence_caring")}
    assert "caring_for_close_others" in ids
    a = next(a for a in reg.anchors if a.id == "caring_for_close_others")
    assert set(a.members) >= {"schwartz:benevolence_caring", "mft:caring", "ross:beneficence"}
