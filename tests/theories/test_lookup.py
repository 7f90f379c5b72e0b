"""Value lookup: canonical ids, aliases, display names, ambiguity and close matches."""

from __future__ import annotations

import re

import pytest

from valueflow.errors import UnknownNameError
from valueflow.theories import get_registry, normalize_name, resolve_value


@pytest.mark.parametrize(("name", "expected"), [
    ("schwartz:benevolence", "schwartz:benevolence"),
    ("benevolence", "schwartz:benevolence"),
    ("pvq:benevolence", "schwartz:benevolence"),
    ("basic_values:power", "schwartz:power"),
    ("PVQ:Self-Direction", "schwartz:self_direction"),
    ("Self Direction", "schwartz:self_direction"),
    ("benevolence:caring", "schwartz:benevolence_caring"),
    ("schwartz:benevolence:caring", "schwartz:benevolence_caring"),
    ("Benevolence–caring", "schwartz:benevolence_caring"),
    ("care-harm", "mft:care_harm"),
    ("care/harm", "mft:care_harm"),
    ("Care_Harm", "mft:care_harm"),
    ("care harm", "mft:care_harm"),
    ("care", "mft:care_harm"),
    ("moral_foundations:liberty", "mft:liberty_oppression"),
    ("Sanctity/Degradation", "mft:sanctity_degradation"),
    ("duty:fidelity", "ross:fidelity"),
    ("duties:non-maleficence", "ross:non_maleficence"),
    ("Non-maleficence", "ross:non_maleficence"),
    ("prima_facie_duties:self improvement", "ross:self_improvement"),
    ("right:civil_rights", "rights:civil_rights"),
    ("vasak:peace", "rights:peace"),
    ("human_rights:Civil rights", "rights:civil_rights"),
    ("Freedom of thought, conscience and religion",
     "rights:freedom_of_thought_conscience_religion"),
    ("free speech", "rights:freedom_of_expression"),
    ("group_solidarity_rights", "rights:social_group_solidarity_rights"),
    ("mft:tradition", "mft:tradition"),
    ("schwartz:tradition", "schwartz:tradition"),
    ("ross:justice", "ross:justice"),
    ("moral_foundations:justice", "mft:justice"),
    ("  Humility ", "schwartz:humility"),
])
def test_resolves(name, expected):
    assert resolve_value(name).id == expected


def test_resolved_node_fields():
    node = resolve_value("care/harm")
    assert (node.theory, node.node, node.name, node.level, node.parents) == (
        "mft", "care_harm", "Care/Harm", 1, ())
    leaf = resolve_value("pvq:universalism_nature")
    assert leaf.parents == ("schwartz:universalism",) and leaf.level == 4


@pytest.mark.parametrize(("name", "choices"), [
    ("tradition", ["schwartz:tradition", "mft:tradition"]),
    ("Tradition", ["schwartz:tradition", "mft:tradition"]),
    ("justice", ["mft:justice", "ross:justice"]),
    ("JUSTICE", ["mft:justice", "ross:justice"]),
])
def test_ambiguous_names_list_qualified_choices(name, choices):
    with pytest.raises(UnknownNameError, match="ambiguous") as info:
        resolve_value(name)
    for c in choices:
        assert c in str(info.value)


def test_only_the_intended_names_are_ambiguous():
    assert get_registry().ambiguous_names() == {
        "tradition": ["schwartz:tradition", "mft:tradition"],
        "justice": ["mft:justice", "ross:justice"],
    }


@pytest.mark.parametrize(("name", "suggestion"), [
    ("benevolance", "schwartz:benevolence"),
    ("universalsm", "schwartz:universalism"),
    ("care_harn", "mft:care_harm"),
    ("pvq:tradtion", "schwartz:tradition"),
    ("duty:fidelty", "ross:fidelity"),
    ("mft:benevolence", "schwartz:benevolence"),  # the right name in the wrong theory
])
def test_unknown_names_suggest_close_matches(name, suggestion):
    with pytest.raises(UnknownNameError, match="unknown value") as info:
        resolve_value(name)
    hint = info.value.hint or ""
    match = re.search(r"did you mean (.*?)\?", hint)
    assert match is not None, hint
    suggestions = match.group(1).split(", ")
    assert suggestion in suggestions
    assert 1 <= len(suggestions) <= 3


def test_unknown_theory_prefix():
    with pytest.raises(UnknownNameError, match="unknown theory 'schwarz'") as info:
        resolve_value("schwarz:benevolence")
    assert "schwartz" in (info.value.hint or "")


def test_unknown_with_nothing_close():
    with pytest.raises(UnknownNameError, match="unknown value 'qqqqzz'") as info:
        resolve_value("qqqqzz")
    assert "did you mean" not in (info.value.hint or "")


@pytest.mark.parametrize("bad", ["", "  ", "::"])
def test_empty_names(bad):
    with pytest.raises(UnknownNameError):
        resolve_value(bad)


def test_unknown_name_error_is_a_key_error_with_readable_str():
    with pytest.raises(KeyError) as info:
        resolve_value("benevolance")
    assert str(info.value).startswith("unknown value")


def test_normalize_name():
    assert normalize_name(" Care / Harm ") == "care_harm"
    assert normalize_name("PVQ : Self-Direction") == "pvq:self_direction"
    assert normalize_name("Self-direction–thought") == "self_direction_thought"


def test_theory_lookup_and_navigation():
    reg = get_registry()
    assert reg.theory("PVQ").key == "schwartz"
    assert reg.theory("vasak").key == "rights"
    assert reg.theory("Moral Foundations").key == "mft"
    with pytest.raises(UnknownNameError, match="unknown theory") as info:
        reg.theory("schwarts")
    assert "schwartz" in (info.value.hint or "")
    t = reg.theory("schwartz")
    assert [n.node for n in t.path("schwartz:self_direction_thought")] == [
        "growth", "openness_to_change", "self_direction", "self_direction_thought"]
    assert [n.node for n in t.ancestors("face")] == [
        "self_protection", "self_enhancement", "conservation"]
    assert {n.node for n in t.descendants("self_transcendence")} == {
        "benevolence", "universalism", "humility", "benevolence_dependability",
        "benevolence_caring", "universalism_tolerance", "universalism_concern",
        "universalism_nature"}
    assert "benevolence" in t and "schwartz:benevolence" in t and "mft:care_harm" not in t
    with pytest.raises(UnknownNameError, match="no node"):
        t.node("caring")
    assert reg.theory_of("care").key == "mft"


def test_registry_is_cached():
    assert get_registry() is get_registry()
