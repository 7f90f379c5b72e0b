"""``valueflow theories ...`` through click's CliRunner and the real entry point."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from valueflow.cli import cli, main
from valueflow.errors import UnknownNameError
from valueflow.theories import THEORY_FILES_ENV


@pytest.fixture(autouse=True)
def _restore_theory_files(monkeypatch):
    # The root --theory-file option writes $VALUEFLOW_THEORY_FILES; undo it after each test.
    monkeypatch.setenv(THEORY_FILES_ENV, "")


def run(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_list_json():
    data = json.loads(run("theories", "list", "--json"))
    counts = {t["key"]: t["n_nodes"] for t in data["theories"]}
    assert counts == {"schwartz": 31, "mft": 32, "ross": 7, "rights": 40}
    schwartz = next(t for t in data["theories"] if t["key"] == "schwartz")
    assert schwartz["nodes_per_level"] == {"1": 2, "2": 4, "3": 12, "4": 13}
    assert "pvq" in schwartz["aliases"]
    evals = [v["id"] for v in data["evaluation_values"]]
    assert len(evals) == 32 and evals[0] == "schwartz:benevolence"
    assert evals[-1] == "rights:social_group_solidarity_rights"


def test_list_table():
    out = run("theories", "list")
    for word in ("schwartz", "mft", "ross", "rights", "32 evaluation values", "care_harm"):
        assert word in out


def test_show_tree_and_json():
    out = run("theories", "show", "pvq")
    assert "self_direction_thought" in out and "(also under conservation)" in out
    # a multi-parent node is drawn once
    assert out.count("humility") == 1
    data = json.loads(run("theories", "show", "vasak", "--json"))
    assert data["key"] == "rights" and len(data["nodes"]) == 40
    peace = next(n for n in data["nodes"] if n["node"] == "peace")
    assert peace["parents"] == ["rights:social_group_solidarity_rights"] and peace["level"] == 3


def test_value_json():
    data = json.loads(run("theories", "value", "Care-Harm", "--json"))
    assert data["id"] == "mft:care_harm" and data["level"] == 1
    assert set(data["phrasings"]) == {"-2", "-1", "0", "1", "2"}
    assert data["judge_definition"].startswith("A text supports")
    assert "mft:caring" in data["children"]
    assert "avoiding_harm" in data["anchors"]
    leaf = json.loads(run("theories", "value", "pvq:power_dominance", "--json"))
    assert leaf["path"] == ["schwartz:self_protection", "schwartz:self_enhancement",
                            "schwartz:power", "schwartz:power_dominance"]
    assert leaf["judge_definition"] is None and leaf["phrasings"] == {}


def test_value_text():
    out = run("theories", "value", "duty:fidelity")
    assert "ross:fidelity" in out and "Judge definition" in out and "-2:" in out


def test_anchors_json_and_filter():
    data = json.loads(run("theories", "anchors", "--json"))
    assert len(data) >= 60
    assert all(len(a["theories"]) >= 2 for a in data)
    only = json.loads(run("theories", "anchors", "--value", "ross:gratitude", "--json"))
    assert only and all("ross:gratitude" in a["members"] for a in only)
    assert "cross-theory anchors" in run("theories", "anchors")


def test_validate(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent("""\
        key: mine
        name: Mine
        label: Value
        nodes:
          - {id: honesty, definition: Telling the truth.}
          - {id: candour, definition: Saying plainly what one thinks., parents: [honesty]}
        anchors:
          - {id: truth_telling, description: Not deceiving others., members: [mine:honesty, ross:fidelity]}
        """), encoding="utf-8")
    assert "OK" in run("theories", "validate", str(path))
    data = json.loads(run("theories", "validate", str(path), "--json"))
    assert data == {"file": str(path), "valid": True, "key": "mine", "name": "Mine",
                    "n_nodes": 2, "depth": 2, "n_anchors": 1, "n_with_phrasings": 0}
    # usable through the root --theory-file option
    out = json.loads(run("--theory-file", str(path), "theories", "value", "candour", "--json"))
    assert out["id"] == "mine:candour" and out["parents"] == ["mine:honesty"]


def test_user_errors_go_out_as_valueflow_errors(tmp_path, capsys):
    res = CliRunner().invoke(cli, ["theories", "value", "justice"])
    assert isinstance(res.exception, UnknownNameError)
    with pytest.raises(SystemExit) as info:
        main(["theories", "value", "tradition"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and "mft:tradition" in err and "Hint:" in err

    bad = tmp_path / "bad.yaml"
    bad.write_text("key: bad\nname: B\nlabel: Value\nnodes:\n  - {id: a}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["theories", "validate", str(bad)])
    assert info.value.code == 2
    assert "'definition' is missing" in capsys.readouterr().err

    with pytest.raises(SystemExit) as info:
        main(["theories", "show", "schwarz"])
    assert info.value.code == 2
    assert "did you mean schwartz" in capsys.readouterr().err


def test_theory_file_option_does_not_leak():
    import os

    assert os.environ.get(THEORY_FILES_ENV) == ""
    assert json.loads(run("theories", "list", "--json"))["theories"][-1]["key"] == "rights"
