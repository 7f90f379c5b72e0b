"""Profile prompts: bins, grouping by theory, filters, errors, and the steer profile regime."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from valueflow.errors import DataError, UnknownNameError, ValueFlowError
from valueflow.steer import (
    PRIORITY_LABELS,
    PriorityBins,
    load_config,
    plan_steering,
    profile_prompt,
    profile_prompts,
)
from valueflow.steer._profile_prompt import PROFILE_FOOTER, PROFILE_HEADER

PROFILE = {"benevolence": 7.5, "power": -4.0, "security": 0.5, "schwartz:tradition": -9.0,
           "care/harm": 2.0, "ross:fidelity": 6.0, "rights:civil_rights": math.nan}


def _lines(prompt: str) -> list[str]:
    return [ln[2:] for ln in prompt.splitlines() if ln.startswith("- ")]


def test_bins_follow_the_steering_levels_edges():
    b = PriorityBins()
    got = [b.label(x) for x in (10, 6, 5.9, 2, 1.9, 0, -1.9, -2, -5.9, -6, -10)]
    vh, h, m, lo, vl = PRIORITY_LABELS
    assert got == [vh, vh, h, h, m, m, m, lo, lo, vl, vl]
    wide = PriorityBins(very_high=8, high=4, low=-4, very_low=-8)
    assert wide.label(6) == h and wide.label(-6) == lo
    with pytest.raises(ValidationError, match="must rise"):
        PriorityBins(high=7)


def test_prompt_groups_values_by_theory_with_one_line_each():
    text = profile_prompt(PROFILE)
    assert text.startswith(PROFILE_HEADER) and text.endswith(PROFILE_FOOTER)
    # the theories in the registry's order, each with its values from the highest down
    blocks = text.split("\n\n")[1:-1]
    assert [b.splitlines()[0] for b in blocks] == [
        "Schwartz's theory of basic human values:", "Moral Foundations Theory:",
        "Ross's prima facie duties:"]
    assert _lines(blocks[0]) == [
        "Very high priority — Benevolence (looking after the well-being of the people one "
        "deals with closely and often, such as family, friends and colleagues, by caring for "
        "them and being someone they can rely on).",
        "Moderate priority — Security (safety, stability and harmony, both in one's immediate "
        "surroundings and in the wider society).",
        "Low priority — Power (social standing and control: holding sway over other people "
        "and commanding wealth and other resources).",
        "Very low priority — Tradition (maintaining and preserving the customs, beliefs and "
        "practices handed down by one's culture, family or religion)."]
    assert _lines(blocks[1])[0].startswith("High priority — Care/Harm (sensitivity")
    # a multi-sentence definition gives its first sentence only
    fidelity = _lines(blocks[2])[0]
    assert fidelity.startswith("Very high priority — Fidelity (the duty that arises")
    assert "Ross held" not in fidelity and fidelity.endswith("mislead).")
    assert "Civil rights" not in text  # NaN: unknown, left out


def test_filters_theories_top_and_min_abs():
    only = profile_prompt(PROFILE, theories=["pvq"])  # an alias of schwartz
    assert len(_lines(only)) == 4 and "Care/Harm" not in only
    top = _lines(profile_prompt(PROFILE, top=2))
    assert [ln.split(" (")[0] for ln in top] == ["Very high priority — Benevolence",
                                                 "Very low priority — Tradition"]
    strong = _lines(profile_prompt(PROFILE, min_abs=5))
    assert len(strong) == 3 and not any("Security" in ln for ln in strong)


def test_profile_table_in_the_shape_value_profile_writes():
    rows = [{"group": g, "value": v, "theory": v.split(":")[0], "intensity": x, "low": x - 1,
             "high": x + 1, "n_texts": 3}
            for g, vals in (("ann", {"schwartz:power": 7.0, "mft:care_harm": -3.0}),
                            ("bob", {"schwartz:power": -7.0, "mft:care_harm": 3.0}))
            for v, x in vals.items()]
    frame = pd.DataFrame(rows)
    prompts = profile_prompts(frame)
    assert list(prompts) == ["ann", "bob"]
    assert "Very high priority — Power" in prompts["ann"]
    assert "Very low priority — Power" in prompts["bob"]
    with pytest.raises(DataError, match="holds 2 groups"):
        profile_prompt(frame)
    assert profile_prompt(frame[frame.group == "ann"]) == prompts["ann"]
    assert list(profile_prompts(frame.drop(columns="group").iloc[:2])) == ["all"]


def test_errors_are_one_line_with_a_hint():
    with pytest.raises(DataError, match="is not a value of a known theory") as err:
        profile_prompt({"mine:thrift": 5.0})
    assert "\n" not in err.value.message and err.value.hint
    with pytest.raises(DataError, match="no profile prompt: none of its 2 values") as err:
        profile_prompt({"benevolence": 5.0, "power": 1.0}, theories=["mft"])
    assert err.value.hint
    with pytest.raises(DataError, match="no value with a known intensity"):
        profile_prompt({"benevolence": math.nan})
    with pytest.raises(DataError, match="outside"):
        profile_prompt({"benevolence": 12.0})
    with pytest.raises(DataError, match="twice"):
        profile_prompt(pd.DataFrame({"value": ["power", "schwartz:power"],
                                     "intensity": [1.0, 2.0]}))
    with pytest.raises(UnknownNameError, match="unknown theory"):
        profile_prompt(PROFILE, theories=["astrology"])


def test_steer_profile_regime_prompt_style(tmp_path):
    f = tmp_path / "profile.csv"
    pd.DataFrame({"value": ["benevolence", "power", "security", "schwartz:tradition"],
                  "intensity": [7.5, -4.0, 0.5, -9.0]}).to_csv(f, index=False)
    base = {"models": ["scripted"], "regimes": ["profile"], "queries": {"limit": 2}}
    old = plan_steering(load_config({**base, "profile": {"path": str(f), "top": 3}}))
    new = plan_steering(load_config({**base, "profile": {"path": str(f), "top": 3,
                                                         "style": "prompt"}}))
    c_old = next(c for c in old.conditions if c.regime == "profile")
    c_new = next(c for c in new.conditions if c.regime == "profile")
    # the same values and levels are scored; only the prompt differs
    assert c_new.targets == c_old.targets and c_new.style == "prompt"
    assert c_old.style == "instruction" and c_new.id != c_old.id
    t = next(t for t in new.trials if t.condition == c_new)
    system = t.messages[0]["content"]
    assert t.messages[0]["role"] == "system"
    assert system == profile_prompt({"schwartz:tradition": -9.0, "schwartz:benevolence": 7.5,
                                     "schwartz:power": -4.0})
    assert "Security" not in system  # top 3
    assert t.messages[1] == next(x for x in new.trials
                                 if x.condition.regime == "default"
                                 and x.query == t.query).messages[0]
    with pytest.raises(Exception, match="style"):
        load_config({**base, "profile": {"path": str(f), "style": "poem"}})
    with pytest.raises(Exception, match=r"profile\.bins: priority bin edges must rise"):
        load_config({**base, "profile": {"path": str(f), "style": "prompt",
                                         "bins": {"high": 9}}})
    wide = plan_steering(load_config({**base, "profile": {"path": str(f), "style": "prompt",
                                                          "bins": {"very_high": 8}}}))
    assert "- High priority — Benevolence" in wide.trials[-1].messages[0]["content"]


class _ValueStub:
    """A local-scorer stand-in: benevolence +8 for texts about helping, else -1; power -7
    for everyone; every other value 0."""

    name = "stub"
    description = "a stub scorer"

    def score(self, texts, value):
        import numpy as np

        if value.id == "schwartz:benevolence":
            x = np.array([8.0 if "help" in t else -1.0 for t in texts])
        elif value.id == "schwartz:power":
            x = np.full(len(texts), -7.0)
        else:
            x = np.zeros(len(texts))
        return np.column_stack([x, x - 1, x + 1])


def test_profile_cli_writes_prompts(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    import valueflow.embed as embed
    from valueflow.cli._main import cli

    monkeypatch.setattr(embed, "load_local_scorer", lambda *a, **k: _ValueStub())
    posts = tmp_path / "posts.csv"
    pd.DataFrame({"text": ["I help my neighbours.", "We help at the shelter.", "Nice day.",
                           "Rain again."],
                  "who": ["ann", "ann", "bob", "bob"]}).to_csv(posts, index=False)
    run = CliRunner().invoke
    one = tmp_path / "prompt.txt"
    r = run(cli, ["profile", str(posts), "--vidb", "seed", "--value", "benevolence",
                  "--value", "power", "--value", "care/harm", "--prompt-out", str(one)])
    assert r.exit_code == 0, r.output
    text = one.read_text(encoding="utf-8")
    # all four texts: benevolence (8 + 8 - 1 - 1) / 4 = 3.5, power -7, care/harm 0
    assert "- High priority — Benevolence (" in text
    assert "- Very low priority — Power (" in text
    assert "- Moderate priority — Care/Harm (" in text
    assert text.startswith(PROFILE_HEADER)

    many = tmp_path / "prompts.json"
    r = run(cli, ["profile", str(posts), "--group-column", "who", "--vidb", "seed",
                  "--value", "benevolence", "--value", "power", "--prompt-out", str(many),
                  "--prompt-top", "1"])
    assert r.exit_code == 0, r.output
    prompts = json.loads(many.read_text(encoding="utf-8"))
    assert list(prompts) == ["ann", "bob"]
    assert _lines(prompts["ann"])[0].startswith("Very high priority — Benevolence")
    assert _lines(prompts["bob"])[0].startswith("Very low priority — Power")  # top 1
    assert len(_lines(prompts["bob"])) == 1

    # refused before any scoring: an existing file, a .txt for several groups, a bad suffix
    def refused(result, text):
        return isinstance(result.exception, ValueFlowError) and text in str(result.exception)

    r = run(cli, ["profile", str(posts), "--vidb", "seed", "--prompt-out", str(one)])
    assert refused(r, "exists")
    txt = tmp_path / "groups.txt"
    r = run(cli, ["profile", str(posts), "--group-column", "who", "--vidb", "seed",
                  "--prompt-out", str(txt)])
    assert refused(r, ".json") and not txt.exists()
    r = run(cli, ["profile", str(posts), "--vidb", "seed", "--prompt-out",
                  str(tmp_path / "p.md")])
    assert refused(r, "--prompt-out")
    r = run(cli, ["profile", str(posts), "--vidb", "seed", "--prompt-out", str(one),
                  "--overwrite", "--value", "power"])
    assert r.exit_code == 0 and "Benevolence" not in one.read_text(encoding="utf-8")
