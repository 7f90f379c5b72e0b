from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.cli._main import COMMANDS


def test_help_shows_the_whole_command_tree():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert any(line.strip().startswith("theories") for line in lines)
    # sub-commands are listed indented under their group
    assert any(line.startswith("    list") for line in lines)
    assert any(line.startswith("    import") for line in lines)


def test_every_registered_command_module_exposes_its_command():
    import importlib
    import importlib.util

    import click

    for name, (module, attr, _help) in COMMANDS.items():
        if importlib.util.find_spec(module) is None:
            continue
        assert isinstance(getattr(importlib.import_module(module), attr), click.Command), name


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
