"""OpinionQA group alignment: reading both layouts, the metric, letter parsing, the study
end to end against the fake OpenAI server (log-probabilities and samples), resume, and
the bad inputs that must write nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli._main import cli
from valueflow.errors import ConfigError, DataError, ValueFlowError
from valueflow.llm.testing import FakeOpenAIServer
from valueflow.steer import (
    alignment,
    bootstrap_mean,
    group_file_stem,
    letter_distribution,
    load_opinionqa,
    parse_letter,
    resolve_groups,
    split_groups,
    study_opinionqa,
    wasserstein_1d,
)
from valueflow.steer._opinionqa_data import persona_sentence

SAFE = "['Very safe', 'Somewhat safe', 'Not too safe', 'Not at all safe', 'Refused']"
SAFE_MAP = "{1.0: 'Very safe', 2.0: 'Somewhat safe', 3.0: 'Not too safe', " \
           "4.0: 'Not at all safe', 99.0: 'Refused'}"


def _info(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["key", "question", "references", "option_mapping",
                                       "option_ordinal"])


def write_survey(folder: Path, n: int = 40) -> Path:
    """One survey, six questions (one without an order), ``n`` weighted respondents in two
    parties and two sexes; answers follow the respondent's number, with Refused and empty
    cells mixed in."""
    folder.mkdir(parents=True)
    _info([
        ("SAFE_W99", "How safe is your local community from crime?", SAFE, SAFE_MAP,
         "[1.0, 2.0, 3.0, 4.0]"),
        ("WORLD_W99", "Compared to 50 years ago, do you think",
         "['We live in a safer world', 'We live in a more dangerous world', "
         "'Neither safer nor more dangerous', 'Refused']",
         "{1.0: 'We live in a safer world', 2.0: 'We live in a more dangerous world', "
         "3.0: 'Neither safer nor more dangerous', 99.0: 'Refused'}", "[1.0, 2.0, 1.5]"),
        ("GUN_W99", "Do you personally own a gun?", "['Yes', 'No', 'Refused']",
         "{1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}", ""),
        ("WORRY_W99", "How much do you worry about losing your job?",
         "['A lot', 'A little', 'Not at all', 'Refused']",
         "{1.0: 'A lot', 2.0: 'A little', 3.0: 'Not at all', 99.0: 'Refused'}", ""),
        # the brief's direction: option text -> code, Refused not mapped
        ("TRUST_W99", "How often can you trust the government?",
         "['Most of the time', 'Some of the time', 'Never', 'Refused']",
         "{'Most of the time': 1, 'Some of the time': 2, 'Never': 3}", ""),
        ("REASON_W99", "What is the main reason you own a gun?",
         "['Protection', 'Hunting', 'Sport', 'Refused']",
         "{1.0: 'Protection', 2.0: 'Hunting', 3.0: 'Sport', 99.0: 'Refused'}", "[1, 1, 1]"),
    ]).to_csv(folder / "info.csv")
    options = {"SAFE_W99": ["Very safe", "Somewhat safe", "Not too safe", "Not at all safe"],
               "WORLD_W99": ["We live in a safer world", "We live in a more dangerous world",
                             "Neither safer nor more dangerous"],
               "GUN_W99": ["Yes", "No"], "WORRY_W99": ["A lot", "A little", "Not at all"],
               "TRUST_W99": ["Most of the time", "Some of the time", "Never"],
               "REASON_W99": ["Protection", "Hunting", "Sport"]}
    rows = []
    for i in range(n):
        dem = i % 2 == 0
        row = {"QKEY": 1000 + i, "POLPARTY": "Democrat" if dem else "Republican",
               "SEX": "Female" if i % 4 < 2 else "Male", "WEIGHT_W99": 0.5 + 0.5 * (i % 3)}
        for j, (key, opts) in enumerate(options.items()):
            # Democrats lean to the first options, Republicans to the last ones
            k = (i // 2 + j) % 3
            pick = min(k, len(opts) - 1) if dem else len(opts) - 1 - min(k, len(opts) - 1)
            row[key] = opts[pick]
        if i % 7 == 3:
            row["SAFE_W99"] = "Refused"
        if i % 11 == 5:
            row["GUN_W99"] = ""
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "responses.csv", index=False)
    return folder


@pytest.fixture
def release(tmp_path) -> Path:
    root = tmp_path / "opinionqa"
    write_survey(root / "American_Trends_Panel_W99")
    return root


# -- reading -------------------------------------------------------------------------------
def test_group_distributions_are_weighted_and_drop_refused(tmp_path):
    folder = tmp_path / "one" / "American_Trends_Panel_W7"
    folder.mkdir(parents=True)
    _info([("SAFE_W7", "How safe?", SAFE, SAFE_MAP, "")]).to_csv(folder / "info.csv")
    pd.DataFrame({
        "POLPARTY": ["Democrat"] * 5 + ["Republican"] * 3,
        "SAFE_W7": ["Very safe", "Very safe", "Not too safe", "Refused", "",
                    "Somewhat safe", "Not at all safe", "4"],  # a code stands for its option
        "WEIGHT_W7": [1.0, 2.0, 1.0, 5.0, 3.0, 1.0, 3.0, 0.5],
    }).to_csv(folder / "responses.csv", index=False)
    data = load_opinionqa(tmp_path / "one")
    q = data.questions["American_Trends_Panel_W7/SAFE_W7"]
    assert q.options == ("Very safe", "Somewhat safe", "Not too safe", "Not at all safe")
    assert q.positions == (1.0, 2.0, 3.0, 4.0)
    assert data.groups() == ["POLPARTY=Democrat", "POLPARTY=Republican"]
    dem = data.distributions("POLPARTY=Democrat")["American_Trends_Panel_W7/SAFE_W7"]
    rep = data.distributions("POLPARTY=Republican")["American_Trends_Panel_W7/SAFE_W7"]
    # Democrats: Very safe 1 + 2, Not too safe 1 (Refused and the empty answer count for none)
    np.testing.assert_allclose(dem, [3 / 4, 0, 1 / 4, 0])
    # Republicans: Somewhat safe 1, Not at all safe 3 + 0.5
    np.testing.assert_allclose(rep, [0, 1 / 4.5, 0, 3.5 / 4.5])
    # by hand: |CDF differences| 3/4, 3/4 - 2/9, 3/4 - 2/9 + 1/4 = 7/9 sum to 37/18
    assert wasserstein_1d(dem, rep) == pytest.approx(37 / 18)
    assert alignment(dem, rep) == pytest.approx(1 - 37 / 54)


def test_the_release_layout(release):
    data = load_opinionqa(release)
    ids = sorted(data.questions)
    assert len(ids) == 5 and not any("REASON" in i for i in ids)  # no order: left out
    assert any("without an order" in n for n in data.notes)
    world = data.questions["American_Trends_Panel_W99/WORLD_W99"]
    assert world.positions == (1.0, 2.0, 1.5)  # option_ordinal wins over the codes
    trust = data.questions["American_Trends_Panel_W99/TRUST_W99"]
    assert trust.options == ("Most of the time", "Some of the time", "Never")
    assert "SEX=Female" in data.groups() and "POLPARTY=Democrat" in data.groups()
    d = data.distributions("POLPARTY=Democrat")
    assert set(d) == set(ids) and all(abs(v.sum() - 1) < 1e-12 for v in d.values())
    # a single survey folder reads the same
    assert sorted(load_opinionqa(release / "American_Trends_Panel_W99").questions) == ids


def test_the_pre_aggregated_layout(tmp_path):
    items = [
        {"question": "Is it safe?", "options": ["Yes", "Somewhat", "No", "Refused"],
         "group": "POLPARTY=Democrat", "distribution": [6, 2, 1, 1]},
        {"question": "Is it safe?", "options": ["Yes", "Somewhat", "No", "Refused"],
         "group": "POLPARTY=Republican", "distribution": [0.1, 0.2, 0.6, 0.1]},
        {"id": "q2", "question": "Better or worse?", "options": ["Better", "Worse", "Same"],
         "ordinal": [1, 3, 2], "group": "POLPARTY=Democrat", "distribution": [1, 1, 2]},
    ]
    f = tmp_path / "steer.jsonl"
    f.write_text("\n".join(json.dumps(i) for i in items), encoding="utf-8")
    data = load_opinionqa(f)
    assert data.groups() == ["POLPARTY=Democrat", "POLPARTY=Republican"]
    (qid,) = [q for q in data.questions if q != "q2"]
    assert data.questions[qid].options == ("Yes", "Somewhat", "No")
    np.testing.assert_allclose(data.distributions("POLPARTY=Democrat")[qid], [6 / 9, 2 / 9, 1 / 9])
    assert data.questions["q2"].positions == (1.0, 3.0, 2.0)
    assert "q2" not in data.distributions("POLPARTY=Republican")
    g = tmp_path / "steer.json"
    g.write_text(json.dumps(items), encoding="utf-8")
    assert sorted(load_opinionqa(g).questions) == sorted(data.questions)
    # without --groups, an item file's study covers all its groups
    groups, files, _ = resolve_groups(data, None)
    assert groups == ["POLPARTY=Democrat", "POLPARTY=Republican"] and files == {}


# -- the metric ----------------------------------------------------------------------------
def test_alignment_on_known_cases():
    p = [0.2, 0.3, 0.5]
    assert alignment(p, p) == pytest.approx(1.0)
    assert alignment([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(0.0)
    assert wasserstein_1d([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(3.0)
    # one step apart on a 5-point scale: 1 - 1/4
    assert alignment([0, 1, 0, 0, 0], [0, 0, 1, 0, 0]) == pytest.approx(0.75)
    # half the mass moved from one end to the other
    assert alignment([1, 0, 0], [0.5, 0, 0.5]) == pytest.approx(0.5)
    # symmetric, unnormalised input, positions in any order
    assert alignment([2, 2], [1, 3]) == pytest.approx(alignment([1, 3], [2, 2]))
    assert wasserstein_1d([1, 0, 0], [0, 0, 1], [1, 2, 1.5]) == pytest.approx(0.5)
    assert math.isnan(alignment([1, 0], [0, 1], [1, 1]))
    with pytest.raises(ValueError):
        alignment([1, 0], [0, 0, 1])


def test_alignment_matches_scipy_when_available():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(20):
        k = int(rng.integers(2, 7))
        p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        pos = np.sort(rng.uniform(0, 5, size=k))
        assert wasserstein_1d(p, q, pos) == pytest.approx(
            stats.wasserstein_distance(pos, pos, p, q))


def test_bootstrap_interval_holds_the_mean():
    mean, lo, hi = bootstrap_mean([0.6, 0.7, 0.8, 0.9, math.nan], seed=1)
    assert mean == pytest.approx(0.75) and lo < mean < hi
    assert bootstrap_mean([0.5]) == (0.5, 0.5, 0.5)
    assert all(math.isnan(x) for x in bootstrap_mean([]))


# -- reading answers -----------------------------------------------------------------------
OPTS = ["Very safe", "Somewhat safe", "Not too safe", "Not at all safe"]


@pytest.mark.parametrize(("text", "want"), [
    ("B", 1), ("b", 1), (" (C) ", 2), ("**D**", 3), ("A.", 0),
    ("Answer: C", 2), ("The answer is B.", 1), ("My answer: (D)", 3),
    ("B) Somewhat safe", 1), ("C. Not too safe, sadly", 2),
    ("Not too safe", 2), ("Somewhat safe, I would say", 1),
    ("I would say it is not at all safe these days", 3),
    ("E", None), ("Answer: F", None), ("I think it is a hard question", None),
    ("I am not sure", None), ("", None),
])
def test_parse_letter(text, want):
    assert parse_letter(text, OPTS) == want


def test_parse_letter_keeps_nested_options_apart():
    opts = ["Yes", "Yes, but rarely", "No"]
    assert parse_letter("Yes, but rarely.", opts) == 1
    assert parse_letter("yes", opts) == 0
    assert parse_letter("Honestly, no.", opts) == 2


def test_letter_distribution_from_top_logprobs():
    top = {"A": math.log(0.5), " B": math.log(0.2), "B": math.log(0.1), "Hello": math.log(0.1),
           "a": math.log(0.05), "C": math.log(0.05)}
    d = letter_distribution(top, 2)  # C is not an option of a two-option question
    np.testing.assert_allclose(d, [0.5 / 0.8, 0.3 / 0.8])
    assert letter_distribution({"Sure": -0.1, "alt0": -2.0}, 3) is None


def test_group_names():
    assert split_groups("POLPARTY=Democrat,INCOME=$100,000 or more, SEX=Female") == [
        "POLPARTY=Democrat", "INCOME=$100,000 or more", "SEX=Female"]
    assert group_file_stem("POLPARTY=Democrat") == "POLPARTY=Democrat"
    assert group_file_stem("INCOME=$100,000 or more") == "INCOME=_100_000_or_more"
    assert persona_sentence("POLPARTY=Democrat") == "In terms of political party, you are Democrat."
    assert persona_sentence("HOBBY=chess") == "In terms of hobby, you are chess."


# -- the study end to end --------------------------------------------------------------------
def _letters_by_persona(body) -> dict[str, float]:
    """Democrats answer A, Republicans the last letter; a profile prompt sharpens both."""
    system = body["messages"][0]["content"]
    user = body["messages"][-1]["content"]
    last = [ln[0] for ln in user.splitlines() if len(ln) > 2 and ln[1:3] == ". "][-1]
    sharp = "value profile" in system
    first, other = ("A", last) if "Democrat" in system else (last, "A")
    p = 0.9 if sharp else 0.6
    return {first: math.log(p), f" {other}": math.log(1 - p), "Sure": math.log(0.01)}


def _profiles(folder: Path) -> Path:
    folder.mkdir()
    pd.DataFrame({"group": "POLPARTY=Democrat", "value": ["benevolence", "power"],
                  "intensity": [7.0, -3.0]}).to_csv(folder / "POLPARTY=Democrat.csv",
                                                    index=False)
    return folder


def _study(args, ws_env=True):
    return CliRunner().invoke(cli, ["study", "opinionqa", *args])


def test_study_cli_with_logprobs_and_resume(release, tmp_path, tmp_workspace):
    profiles = _profiles(tmp_path / "profiles")
    out = tmp_path / "study"
    with FakeOpenAIServer(first_logprobs=_letters_by_persona) as server:
        args = ["--data", str(release), "--model", "openai/fake", "--base-url", server.url,
                "--profiles", str(profiles), "--groups", "POLPARTY=Democrat,POLPARTY=Republican",
                "--out", str(out), "--json"]
        r = _study(args)
        assert r.exit_code == 0, r.output
        calls = len(server.requests)
        # 5 ordered questions: Democrat persona + profile, Republican persona (no file)
        assert calls == 15
        assert all(req.body["logprobs"] and req.body["max_tokens"] == 1
                   for req in server.requests)
        payload = json.loads(r.stdout)
        assert payload["method"] == "logprobs"
        assert sorted(p.name for p in out.iterdir()) == ["alignment.csv", "alignment.png",
                                                         "per_question.csv"]
        table = pd.read_csv(out / "alignment.csv")
        assert list(table.columns) == ["group", "condition", "n_questions", "alignment", "low",
                                       "high", "note"]
        rows = {(g, c): r for g, c, r in zip(table.group, table.condition,
                                             table.to_dict("records"), strict=True)}
        assert set(rows) == {("POLPARTY=Democrat", "persona"), ("POLPARTY=Democrat", "profile"),
                             ("POLPARTY=Democrat", "difference"),
                             ("POLPARTY=Republican", "persona"), ("overall", "persona"),
                             ("overall", "profile"), ("overall", "difference")}
        assert "no profile file" in rows[("POLPARTY=Republican", "persona")]["note"]
        for rec in rows.values():
            assert rec["n_questions"] == 5
            assert rec["low"] <= rec["alignment"] + 1e-12 <= rec["high"] + 2e-12
        per_q = pd.read_csv(out / "per_question.csv")
        assert len(per_q) == 15 and set(per_q.method) == {"logprobs"}
        # the sharper profile answers put 0.9 on A for Democrats: check one by hand
        data = load_opinionqa(release)
        safe = per_q[(per_q.question_id == "American_Trends_Panel_W99/SAFE_W99")
                     & (per_q.group == "POLPARTY=Democrat")].set_index("condition")
        human = data.distributions("POLPARTY=Democrat")["American_Trends_Panel_W99/SAFE_W99"]
        for cond, p in (("persona", 0.6), ("profile", 0.9)):
            model = np.array(json.loads(safe.loc[cond, "model_distribution"]))
            np.testing.assert_allclose(model, [p, 0, 0, 1 - p], atol=1e-6)
            assert safe.loc[cond, "alignment"] == pytest.approx(alignment(model, human))
        # the profile prompt went into the system message after the persona
        sys_msgs = {req.body["messages"][0]["content"] for req in server.requests}
        with_profile = [m for m in sys_msgs if "value profile" in m]
        assert with_profile and all(m.startswith("In terms of political party, you are "
                                                 "Democrat.\n\nYou are a person") for m in
                                    with_profile)
        assert "Very high priority — Benevolence" in with_profile[0]

        # resume: the same study again makes no call
        r = _study([*args, "--overwrite"])
        assert r.exit_code == 0, r.output
        assert len(server.requests) == calls
        pd.testing.assert_frame_equal(pd.read_csv(out / "alignment.csv"), table)
    runs = tmp_workspace.runs("opinionqa")
    assert len(runs) == 1 and list(runs["status"]) == ["done"]


def test_study_samples_when_the_backend_gives_no_letter_logprobs(release, tmp_path,
                                                                   tmp_workspace):
    def respond(body):
        if body.get("logprobs"):  # a first token that is no letter
            return "Well, let me think."
        system = body["messages"][0]["content"]
        i = int(body.get("seed") or 0)
        if "Republican" in system:
            return "Answer: B" if i % 2 else "B) that one"
        return ["A", "I think it is a tricky one", "a."][i % 3]

    with FakeOpenAIServer(respond=respond) as server:
        r = _study(["--data", str(release), "--model", "openai/fake", "--base-url", server.url,
                    "--groups", "POLPARTY=Democrat,POLPARTY=Republican", "--samples", "6",
                    "--questions", "3", "--out", str(tmp_path / "s"), "--json"])
        assert r.exit_code == 0, r.output
        # one probe with log-probabilities, then 2 groups x 3 questions x 6 samples
        assert len(server.requests) == 1 + 36
    payload = json.loads(r.stdout)
    assert payload["method"] == "samples"
    per_q = pd.read_csv(tmp_path / "s" / "per_question.csv")
    assert len(per_q) == 6 and set(per_q.condition) == {"persona"}
    dem = per_q[per_q.group == "POLPARTY=Democrat"]
    assert set(dem.n_answers) == {4}  # the middle answer of three names no option
    for d in dem.model_distribution:
        assert json.loads(d)[0] == pytest.approx(1.0)
    for d in per_q[per_q.group == "POLPARTY=Republican"].model_distribution:
        assert json.loads(d)[1] == pytest.approx(1.0)
    table = pd.read_csv(tmp_path / "s" / "alignment.csv")
    assert set(table.condition) == {"persona"} and set(table.n_questions) == {3}


def test_study_in_python_with_a_scripted_backend(release):
    from valueflow.llm import ScriptedBackend

    data = load_opinionqa(release)
    backend = ScriptedBackend("oqa", fn=lambda req: "A")
    res = study_opinionqa(data, ["SEX=Female"], backend,
                          profiles={"SEX=Female": "You value tradition."})
    assert res.method == "samples" and res.failed == 0
    assert list(res.alignment.condition) == ["persona", "profile", "difference"]
    assert res.alignment.set_index("condition").loc["difference", "alignment"] == 0
    with pytest.raises(ConfigError, match="not a group of this study"):
        study_opinionqa(data, ["SEX=Female"], backend, profiles={"SEX=Male": "x"})


def test_a_study_whose_every_call_fails_writes_nothing(release, tmp_path, tmp_workspace):
    from valueflow.errors import RunFailedError

    out = tmp_path / "fails"
    with FakeOpenAIServer(rates={"400": 1.0}) as server:
        r = _study(["--data", str(release), "--model", "openai/fake", "--base-url", server.url,
                    "--groups", "SEX=Male", "--samples", "2", "--questions", "2",
                    "--out", str(out)])
    assert isinstance(r.exception, RunFailedError)
    assert not (out / "alignment.csv").exists()
    assert list(tmp_workspace.runs("opinionqa")["status"]) == ["failed"]


# -- bad input: one line, nothing written -----------------------------------------------------
def _refused(tmp_path, args, match, error=ValueFlowError):
    out = tmp_path / "never"
    r = CliRunner().invoke(cli, ["study", "opinionqa", "--model", "openai/fake", "--base-url",
                                 "http://127.0.0.1:9/v1", "--out", str(out), *args])
    assert isinstance(r.exception, error), r.output
    assert match in str(r.exception), str(r.exception)
    assert "\n" not in r.exception.message and r.exception.hint
    assert not out.exists()
    return r.exception


def test_bad_inputs_write_nothing(release, tmp_path, tmp_workspace):
    survey = release / "American_Trends_Panel_W99"
    broken = tmp_path / "broken"
    write_survey(broken / "American_Trends_Panel_W1")
    (broken / "American_Trends_Panel_W1" / "responses.csv").unlink()
    _refused(tmp_path, ["--data", str(broken), "--groups", "SEX=Male"],
             "has no responses.csv", DataError)
    _refused(tmp_path, ["--data", str(release), "--groups", "POLPARTY=Democrats"],
             "no group 'POLPARTY=Democrats'", DataError)
    exc = _refused(tmp_path, ["--data", str(release), "--groups", "RELIG=Buddhist"],
                   "no group 'RELIG=Buddhist'", DataError)
    assert "POLPARTY" in exc.hint and "REASON_W99" not in exc.hint  # a question, not a group
    _refused(tmp_path, ["--data", str(release)], "name the groups", ConfigError)

    mine = tmp_path / "mine"
    mine.mkdir()
    pd.DataFrame({"value": ["mine:thrift"], "intensity": [5.0]}).to_csv(
        mine / "SEX=Male.csv", index=False)
    _refused(tmp_path, ["--data", str(release), "--profiles", str(mine)],
             "is not a value of a known theory", DataError)
    pd.DataFrame({"value": ["benevolence"], "intensity": [5.0]}).to_csv(
        mine / "SEX=Male.csv", index=False)
    _refused(tmp_path, ["--data", str(release), "--profiles", str(mine), "--theories", "ross"],
             "no profile prompt", DataError)
    (mine / "SEX=Mail.txt").write_text("You like letters.", encoding="utf-8")
    exc = _refused(tmp_path, ["--data", str(release), "--profiles", str(mine)],
                   "names no group", DataError)
    assert "SEX=Male" in exc.hint

    bad = tmp_path / "badmap"
    write_survey(bad / "American_Trends_Panel_W2")
    info = pd.read_csv(bad / "American_Trends_Panel_W2" / "info.csv", index_col=0)
    info.loc[2, "option_mapping"] = "{1.0: 'Yes', 2.0: 'No'"
    info.to_csv(bad / "American_Trends_Panel_W2" / "info.csv")
    _refused(tmp_path, ["--data", str(bad), "--groups", "SEX=Male"],
             "cannot read option_mapping", DataError)
    info.loc[2, "option_mapping"] = "['Yes', 'No']"
    info.to_csv(bad / "American_Trends_Panel_W2" / "info.csv")
    _refused(tmp_path, ["--data", str(bad), "--groups", "SEX=Male"],
             "option_mapping is not a non-empty dict", DataError)

    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"question": "Q?", "options": ["Yes", "No"],
                                 "group": "SEX=Male", "distribution": [1]}), encoding="utf-8")
    _refused(tmp_path, ["--data", str(items)], "one share per option", DataError)
    assert survey.is_dir()
    assert tmp_workspace.runs("opinionqa").empty


def test_profiles_from_one_file_written_by_the_profile_command(release, tmp_path,
                                                               tmp_workspace, monkeypatch):
    import valueflow.embed as embed
    from tests.steer.test_profile_prompt import _ValueStub

    monkeypatch.setattr(embed, "load_local_scorer", lambda *a, **k: _ValueStub())
    posts = tmp_path / "party_posts.csv"
    pd.DataFrame({"text": ["I help my neighbours.", "Nice day.", "We help out.", "Rain."],
                  "party": ["POLPARTY=Democrat", "POLPARTY=Republican"] * 2}).to_csv(
        posts, index=False)
    run = CliRunner().invoke
    prompts, table = tmp_path / "prompts.json", tmp_path / "party.csv"
    r = run(cli, ["profile", str(posts), "--group-column", "party", "--vidb", "seed",
                  "--value", "benevolence", "--value", "power", "--prompt-out", str(prompts),
                  "--out", str(table)])
    assert r.exit_code == 0, r.output
    written = json.loads(prompts.read_text(encoding="utf-8"))
    with FakeOpenAIServer(first_logprobs=_letters_by_persona) as server:
        for source, out in ((prompts, "a"), (table, "b")):
            r = _study(["--data", str(release), "--model", "openai/fake", "--base-url",
                        server.url, "--profiles", str(source), "--questions", "2",
                        "--out", str(tmp_path / out), "--json"])
            assert r.exit_code == 0, r.output
            assert set(json.loads(r.stdout)["profiles"]) == set(written)
        systems = {req.body["messages"][0]["content"] for req in server.requests}
    # the JSON's prompts and the prompts made from the table are the same text
    for group, prompt in written.items():
        assert f"{persona_sentence(group)}\n\n{prompt}" in systems
    table_b = pd.read_csv(tmp_path / "b" / "alignment.csv")
    assert set(table_b.condition) == {"persona", "profile", "difference"}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "alignment.csv"), table_b)
    # a file whose groups are not OpinionQA groups is refused
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"ann": "You value kindness."}), encoding="utf-8")
    exc = _refused(tmp_path, ["--data", str(release), "--profiles", str(plain)],
                   "no group 'ann'", DataError)
    assert "CATEGORY=label" in exc.hint
