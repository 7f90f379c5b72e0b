from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.cli._main import COMMANDS

# What a user can rely on, written out here (not read from COMMANDS): a command that goes
# missing from the package fails this test instead of quietly leaving the help.
EXPECTED = {
    "cache": ["clear", "stats"],
    "embed": [],
    "generate": [],
    "hives": ["evaluate", "train"],
    "profile": [],
    "report": [],
    "score": [],
    "steer": ["analyze", "init", "run"],
    "study": ["judges"],
    "theories": ["anchors", "list", "show", "validate", "value"],
    "vidb": ["build", "export", "import", "stats"],
    "workspace": ["info"],
}


def _tree(output: str) -> dict[str, list[str]]:
    """The command tree ``valueflow --help`` prints: top-level names with their children."""
    tree: dict[str, list[str]] = {}
    section = output.split("Commands:", 1)[1]
    for line in section.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        if depth == 1:
            tree[name] = []
            top = name
        elif depth == 2:
            tree[top].append(name)
    return tree


def test_help_lists_every_expected_command_and_sub_command():
    res = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)
    assert res.exit_code == 0
    tree = _tree(res.output)
    for name, subs in EXPECTED.items():
        assert name in tree, f"valueflow --help does not list {name!r}"
        assert set(subs) <= set(tree[name]), (name, tree[name])


def test_every_registered_command_module_exposes_its_command():
    import importlib

    import click

    assert set(EXPECTED) <= set(COMMANDS)
    for name, (module, attr, _help) in COMMANDS.items():
        assert isinstance(getattr(importlib.import_module(module), attr), click.Command), name


def test_a_registered_command_whose_module_is_missing_fails_loudly(monkeypatch):
    monkeypatch.setitem(COMMANDS, "ghost", ("valueflow.cli._no_such_module", "ghost", "x"))
    with pytest.raises(ModuleNotFoundError, match="_no_such_module"):
        CliRunner().invoke(cli, ["--help"], catch_exceptions=False)


def test_import_and_help_stay_light():
    code = (
        "import sys; from valueflow.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'llama_cpp',"
        " 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout


def test_user_error_is_one_line_with_hint_and_exit_2():
    code = "from valueflow.cli import main; main(['theories', 'value', 'benevolense'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("Error: ")
    assert "Traceback" not in out.stderr
    assert "benevolence" in out.stderr


_SWALLOWED = """
import signal, sys, time
from valueflow.cli._main import Terminated, _stop_on_sigterm

# a background job inherits SIGINT ignored, and then Python sends no Ctrl-C at all
signal.signal(signal.SIGINT, signal.default_int_handler)

class Finalised:
    def __del__(self):
        raise {exc}

try:
    with _stop_on_sigterm():
        Finalised()  # the exception raised in __del__ is "ignored" by Python
        for _ in range(300):
            time.sleep(0.01)
    print("ran to the end")
except {caught}:
    print("stopped")
"""


@pytest.mark.parametrize("exc, caught", [("Terminated()", "Terminated"),
                                         ("KeyboardInterrupt()", "KeyboardInterrupt")])
def test_a_stop_swallowed_inside_a_finaliser_is_delivered_again(exc, caught):
    # A signal handler can run inside a __del__ or weakref callback, where Python prints the
    # exception and goes on: the stop must not be lost (CI once saw a SIGTERM run finish 0).
    proc = subprocess.run([sys.executable, "-c", _SWALLOWED.format(exc=exc, caught=caught)],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "stopped", proc.stderr
    assert "Exception ignored" not in proc.stderr


def test_other_exceptions_in_finalisers_still_reach_the_previous_hook():
    proc = subprocess.run(
        [sys.executable, "-c", _SWALLOWED.format(exc="ValueError('x')", caught="ValueError")],
        capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ran to the end"
    assert "Exception ignored" in proc.stderr and "ValueError: x" in proc.stderr
