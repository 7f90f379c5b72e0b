"""README as tests: every ``valueflow ...`` command in README.md's code blocks runs.

The commands run in README order in one temporary project folder (later commands use what
earlier ones made: the seed import, ``steer.yaml``, the steering run), against small
fixture files named as the README names them. Placeholders (``<model>``, ``...``, judges
``A`` and ``B``) become served models; every served model (``openai/``) and the bundled
generator (``llamacpp/``) is a scripted backend here, so nothing needs a server. Model
training is replaced by a stub and the local judge by a stub scorer, except in the main
offline command, which runs the real one once.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_tiny_llama, hf_available, run_main


def tiny_llama(project: Path) -> Path:
    """The project's stand-in for hf/ models, built once."""
    out = project / ".tiny-llama"
    if not (out / "config.json").is_file():
        build_tiny_llama(out)
    return out


def hf_backend(*args, **kwargs):
    from valueflow.llm._hf import HFBackend as cls

    return cls(*args, **kwargs)

README = Path(__file__).resolve().parents[1] / "README.md"
MAIN_COMMAND = "valueflow score --example --value benevolence"


def readme_commands(text: str) -> list[str]:
    """The ``valueflow`` commands of the README's bash blocks, in order, each once
    (continuation lines joined, trailing comments dropped)."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("valueflow ") and line not in commands:
                commands.append(line)
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))

PLACEHOLDERS = {"<model>": "fake", "A": "openai/judge-a", "B": "openai/judge-b"}
AFTER_OPTION = {"--judge": "openai/fake", "--base-url": "http://127.0.0.1:9/v1"}


def to_argv(command: str) -> list[str]:
    """The command's arguments with its placeholders filled in."""
    argv = shlex.split(command)[1:]
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "..." and i > 0 and argv[i - 1] in AFTER_OPTION:
            arg = AFTER_OPTION[argv[i - 1]]
        elif i > 0 and argv[i - 1] == "--judge" and arg in PLACEHOLDERS:
            arg = PLACEHOLDERS[arg]
        out.append(arg.replace("<model>", PLACEHOLDERS["<model>"]))
    return out


def test_the_readme_commands_are_found_and_filled_in():
    assert MAIN_COMMAND in COMMANDS
    assert len(COMMANDS) > 30
    assert not [c for c in COMMANDS if "<" in " ".join(to_argv(c)) or "..." in to_argv(c)]
    assert to_argv("valueflow study judges --data r.csv --judge A --judge B") == [
        "study", "judges", "--data", "r.csv", "--judge", "openai/judge-a", "--judge",
        "openai/judge-b"]
    assert to_argv("valueflow score x.csv --judge openai/<model> --base-url ...")[-3:] == [
        "openai/fake", "--base-url", "http://127.0.0.1:9/v1"]


# -- the scripted world ------------------------------------------------------------------


def _answer(request) -> str:
    """A judge and a generator: ranks a window by a fixed hash of each text; anything else
    gets a rating of 3 (which also stands for a generated answer)."""
    user = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
    if user.endswith("Reply with the letter of one option only."):  # study opinionqa
        return "A"
    shown = re.findall(r"^\[(\d+)\] (.*)$", user, flags=re.MULTILINE)
    if shown:
        order = sorted(shown, key=lambda s: hashlib.sha1(s[1].encode()).hexdigest())
        return "[" + ", ".join(i for i, _t in order) + "]"
    return "Rating: 3"


def _scripted(model: str = "", **_options):
    from valueflow.llm import ScriptedBackend

    return ScriptedBackend(model or "scripted", fn=_answer)


class _StubScorer:
    name = "stub"
    description = "a stub scorer for the README test"

    def score(self, texts, value):
        x = np.array([float(len(t) % 7) - 3 for t in texts])
        return np.column_stack([x, x - 1, x + 1])


class _StubEncoder:
    name = "stub-hives"

    def __init__(self):
        self.meta: dict = {}

    def encode(self, texts, batch_size=32):
        rng = np.random.default_rng(len(texts))
        v = rng.normal(size=(len(texts), 8))
        return v / np.linalg.norm(v, axis=1, keepdims=True)


class _StubEvaluator:
    primary_metric = "knn_accuracy"

    def __init__(self, data, holdout=0.15, seed=0):
        self.held_idx = list(range(3))

    def compare(self, models, names):
        return pd.DataFrame({n: [0.5] for n in names}, index=["knn_accuracy"])


def _stub_training(monkeypatch):
    import valueflow.embed as embed

    def finetune(vidb, out, cfg, **_kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)

    def average(members, out):
        assert all(Path(m).is_dir() for m in members) and len(members) >= 2
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)

    def train(vidb, out=None, config=None, **_kw):
        Path(out).mkdir(exist_ok=True)
        trained = _StubEncoder()
        trained.meta["train_seconds"] = 0
        return trained

    monkeypatch.setattr(embed, "finetune_encoder", finetune)
    monkeypatch.setattr(embed, "average_finetunes", average)
    monkeypatch.setattr(embed, "train_hives", train)
    monkeypatch.setattr(embed, "load_hives", lambda *a, **k: _StubEncoder())
    monkeypatch.setattr(embed, "HiVESEvaluator", _StubEvaluator)
    monkeypatch.setattr(embed, "load_local_scorer", lambda *a, **k: _StubScorer())


# -- the project folder ------------------------------------------------------------------


HELPING = ["I drove my neighbour to the hospital at night.", "She shared her lunch with a "
           "new colleague.", "He shouted at the waiter for no reason.", "The bus leaves at "
           "noon.", "They ignored the lost child crying in the street.", "We collected "
           "coats for the shelter."]
INTENSITY = [8.0, 5.0, -6.0, 0.0, -8.0, 7.0]


def _write_fixtures(root: Path) -> None:
    from valueflow.cli._score import example_path

    pd.read_csv(example_path()).to_csv(root / "responses.csv", index=False)
    texts = pd.DataFrame({"text": HELPING, "value": ["benevolence", "power"] * 3})
    texts.to_csv(root / "texts.csv", index=False)
    refs = pd.DataFrame({"text": HELPING, "value": "benevolence", "intensity": INTENSITY})
    refs.to_csv(root / "reference.csv", index=False)
    refs.to_csv(root / "other.csv", index=False)
    raw = [t.replace(".", ", as usual.") for t in HELPING]  # not in the VIDB yet
    pd.DataFrame({"text": raw}).to_csv(root / "raw_texts.csv", index=False)
    pd.DataFrame({"text": HELPING, "final_rating": INTENSITY}).to_csv(root / "vidb.csv",
                                                                      index=False)
    folder = root / "data" / "final_ratings"
    folder.mkdir(parents=True)
    pd.DataFrame({"text": [t + " Again." for t in HELPING], "final_rating": INTENSITY}).to_csv(
        folder / "benevolence_schwartz_flag_aggregated.csv", index=False)
    pd.DataFrame({"text": HELPING, "author": ["ann", "bob"] * 3}).to_csv(root / "posts.csv",
                                                                         index=False)
    pd.DataFrame({"text": HELPING, "party": ["POLPARTY=Democrat", "POLPARTY=Republican"] * 3}
                 ).to_csv(root / "party_posts.csv", index=False)
    from tests.steer.test_opinionqa import write_survey

    write_survey(root / "opinionqa" / "American_Trends_Panel_W99")
    (root / "my.yaml").write_text(textwrap.dedent("""\
        key: mine
        name: Mine
        label: Value
        nodes:
          - {id: honesty, definition: Telling the truth.}
          - {id: candour, definition: Saying plainly what one thinks., parents: [honesty]}
        """), encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readme-project")
    _write_fixtures(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, project, monkeypatch, capsys):
    from valueflow.llm import _registry

    monkeypatch.chdir(project)
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(project / ".valueflow" / "workspace.duckdb"))
    monkeypatch.setitem(_registry._REGISTRY, "openai", _scripted)
    monkeypatch.setitem(_registry._REGISTRY, "llamacpp", _scripted)
    if hf_available():  # hf/ models (activation steering) are a tiny random Llama here
        tiny = tiny_llama(project)
        monkeypatch.setitem(_registry._REGISTRY, "hf",
                            lambda _model, **_o: hf_backend(str(tiny), device="cpu"))
    if command != MAIN_COMMAND:  # the real local judge runs once, in the main command
        _stub_training(monkeypatch)
    status = run_main(*to_argv(command))
    err = capsys.readouterr().err
    assert status == 0, f"README command failed ({status}): {command}\n{err[-2000:]}"
