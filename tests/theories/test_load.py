"""User theory files: loading, every validation error, and $VALUEFLOW_THEORY_FILES."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from valueflow.errors import DataError, UnknownNameError
from valueflow.theories import (
    THEORY_FILES_ENV,
    get_registry,
    load_theory_file,
    validate_theory_file,
)

GOOD = """\
key: virtues
name: Classical virtues
label: Virtue
aliases: [cardinal]
nodes:
  - id: cardinal_virtues
    name: Cardinal virtues
    definition: The four virtues on which the others were said to hinge.
  - id: prudence
    definition: Practical wisdom in choosing what to do.
    parents: [cardinal_virtues]
    aliases: [practical wisdom]
  - id: courage
    definition: Facing danger or hardship for a worthy end.
    parents: [virtues:cardinal_virtues]
    judge_definition: Supports when it faces fear for a good end. Opposes when it flees duty.
    phrasings:
      -2: You strongly oppose courage.
      -1: You are mildly opposed to courage.
      0: You are neutral about courage.
      1: You somewhat value courage.
      2: You strongly value courage.
  - id: steadfast_courage
    definition: Courage that also holds to prudence when danger is near.
    parents: [courage, prudence]
anchors:
  - id: bravery_and_resistance
    name: Bravery against oppression
    description: Standing up to those who dominate others despite the danger.
    members: [virtues:courage, mft:resistance]
"""


def write(tmp_path, text, name="theory.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_load_good_file(tmp_path):
    t = load_theory_file(write(tmp_path, GOOD))
    assert (t.key, t.label, len(t)) == ("virtues", "Virtue", 4)
    steadfast = t.node("steadfast_courage")
    assert steadfast.parents == ("virtues:courage", "virtues:prudence")
    assert steadfast.level == 3
    assert t.node("prudence").name == "Prudence"  # default display name from the id
    assert t.node("courage").phrasings[-2] == "You strongly oppose courage."
    assert t.node("courage").is_evaluation_ready
    assert [a.id for a in t.anchors] == ["bravery_and_resistance"]


def test_json_and_mapping_form(tmp_path):
    doc = {"key": "j", "name": "J", "label": "Value",
           "nodes": {"a": {"definition": "The first thing."},
                     "b": {"definition": "The second thing.", "parents": ["a"]}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    t = load_theory_file(path)
    assert [n.id for n in t] == ["j:a", "j:b"] and t.node("b").level == 2


def test_user_theory_through_environment(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    monkeypatch.setenv(THEORY_FILES_ENV, os.pathsep.join([str(path), ""]))
    reg = get_registry()
    assert "virtues" in reg.theories
    assert reg.resolve("cardinal:practical wisdom").id == "virtues:prudence"
    assert reg.resolve("courage").id == "virtues:courage"
    assert "bravery_and_resistance" in {a.id for a in reg.anchors_for("mft:resistance")}
    assert len(reg.theory("schwartz")) == 31  # built-ins still there
    monkeypatch.delenv(THEORY_FILES_ENV)
    assert "virtues" not in get_registry().theories


def test_user_node_named_like_a_builtin_becomes_ambiguous(tmp_path, monkeypatch):
    path = write(tmp_path, """\
        key: mine
        name: Mine
        label: Value
        nodes:
          - {id: benevolence, definition: Goodwill toward everyone one meets.}
        """)
    monkeypatch.setenv(THEORY_FILES_ENV, str(path))
    with pytest.raises(UnknownNameError, match=r"ambiguous.*schwartz:benevolence"):
        get_registry().resolve("benevolence")
    assert get_registry().resolve("mine:benevolence").theory == "mine"


# -- every validation error ---------------------------------------------------------------
NODES_OK = "  - {id: a, definition: The first thing.}\n"
HEAD = "key: bad\nname: Bad\nlabel: Value\nnodes:\n"


@pytest.mark.parametrize(("text", "pattern"), [
    (HEAD + NODES_OK + "  - {id: b, definition: B thing., parents: [c]}\n"
     "  - {id: c, definition: C thing., parents: [b]}\n",
     r"node '[bc]': cycle in parents: [bc] -> [bc] -> [bc]"),
    (HEAD + "  - {id: a, definition: Self loop., parents: [a]}\n",
     r"node 'a': cycle in parents: a -> a"),
    (HEAD + NODES_OK + "  - {id: b, definition: B thing., parents: [aa]}\n",
     r"node 'b': unknown parent 'aa'"),
    (HEAD + NODES_OK + NODES_OK, r"node 'a': duplicate id"),
    (HEAD + "  - {id: a}\n", r"node 'a': 'definition' is missing"),
    (HEAD + "  - {id: a, definition: '   '}\n", r"node 'a': 'definition' is empty"),
    (HEAD + "  - {id: a, definition: [x]}\n", r"node 'a': 'definition' must be text"),
    ("key: schwartz\nname: S\nlabel: Value\nnodes:\n" + NODES_OK,
     r"'schwartz' clashes with a built-in theory"),
    ("key: mine\naliases: [pvq]\nname: S\nlabel: Value\nnodes:\n" + NODES_OK,
     r"'pvq' clashes with a built-in theory"),
    ("- just\n- a list\n", r"theory: expected a mapping"),
    ("key: bad\nname: Bad\nlabel: Value\n", r"'nodes' is missing or empty"),
    (HEAD.replace("nodes:\n", "nodes: 3\n"), r"'nodes'.*must be a list"),
    (HEAD + "  - just a string\n", r"node #1: expected a mapping"),
    (HEAD + "  - {id: Bad Id, definition: X thing.}\n", r"id 'Bad Id' must be snake_case"),
    (HEAD + "  - {id: a, definition: X thing., parent: [b]}\n",
     r"node 'a': unknown field\(s\) 'parent'"),
    ("name: Bad\nlabel: Value\nnodes:\n" + NODES_OK, r"'key' is missing"),
    (HEAD + "  - {id: a, definition: X thing., phrasings: {2: Yes.}}\n",
     r"node 'a': phrasings lack level\(s\) -2, -1, 0, 1"),
    (HEAD + "  - {id: a, definition: X thing., phrasings: {5: Yes.}}\n",
     r"phrasing level 5 is not one of"),
    (HEAD + "  - {id: a, definition: X thing., parents: ['ross:fidelity']}\n",
     r"parent 'ross:fidelity' belongs to another theory"),
    (HEAD + "  - {id: a, definition: A thing.\n", r"not valid YAML"),
])
def test_malformed_files(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as info:
        load_theory_file(path)
    assert str(path) in info.value.message  # the message names the file


def test_unknown_parent_suggests_the_close_id(tmp_path):
    path = write(tmp_path, HEAD + NODES_OK + "  - {id: b, definition: B thing., parents: [aa]}\n")
    with pytest.raises(DataError) as info:
        load_theory_file(path)
    assert info.value.hint == "did you mean 'a'?"


def test_invalid_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        load_theory_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read theory file"):
        load_theory_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("anchor", "pattern"), [
    ("{id: x, description: D., members: [bad:a, ross:fidelty]}", r"unknown member 'ross:fidelty'"),
    ("{id: x, description: D., members: [bad:a, bad:zz]}", r"unknown member 'bad:zz'"),
    ("{id: x, description: D., members: [bad:a]}", r"links only theory 'bad'"),
    ("{id: x, description: D., members: [bad:a, bad:a]}", r"a member is listed twice"),
    ("{id: x, members: [bad:a, ross:fidelity]}", r"'description' is missing"),
    ("{id: caring_for_close_others, description: D., members: [bad:a, ross:fidelity]}",
     r"anchor 'caring_for_close_others' is defined twice"),
])
def test_anchor_errors(tmp_path, anchor, pattern):
    path = write(tmp_path, HEAD + NODES_OK + f"anchors:\n  - {anchor}\n")
    with pytest.raises(DataError, match=pattern) as info:
        validate_theory_file(path)
    assert str(path) in info.value.message


def test_anchor_error_surfaces_from_environment(tmp_path, monkeypatch):
    path = write(tmp_path, HEAD + NODES_OK
                 + "anchors:\n  - {id: x, description: D., members: [bad:a, ross:nope]}\n")
    monkeypatch.setenv(THEORY_FILES_ENV, str(path))
    with pytest.raises(DataError, match="unknown member 'ross:nope'"):
        get_registry()


def test_two_user_files_with_the_same_key(tmp_path, monkeypatch):
    a = write(tmp_path, HEAD + NODES_OK, "a.yaml")
    b = write(tmp_path, HEAD + NODES_OK, "b.yaml")
    monkeypatch.setenv(THEORY_FILES_ENV, os.pathsep.join([str(a), str(b)]))
    with pytest.raises(DataError, match="'bad' is already used") as info:
        get_registry()
    assert info.value.message.count(str(b)) == 1
