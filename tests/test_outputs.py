"""Output paths are checked before any work, written atomically, with the usual file mode.

The probe list of issue 16 (item 6 and the smaller items about outputs) is the test list:
a missing or unwritable folder, an existing file, the input itself, an extension the command
cannot write, the file mode under a umask, and a failed write that leaves the old file.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.errors import ConfigError, DataError, ValueFlowError
from valueflow.tables import atomic_output, check_output, check_output_folder, write_table


def _fails(result, text: str) -> bool:
    """A one-line CLI error: a ValueFlowError (or click's usage error) naming ``text``."""
    exc = result.exception
    if isinstance(exc, ValueFlowError):
        return text in str(exc)
    return result.exit_code == 2 and text in result.output


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# -- the helper -----------------------------------------------------------------------------

def test_check_output_refuses_bad_paths_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_output(tmp_path / "missing" / "out.csv")
    with pytest.raises(DataError, match=r"cannot tell the format .* '\.txt'"):
        check_output(tmp_path / "out.txt")
    with pytest.raises(ConfigError, match=r"cannot write a '\.csv' file"):
        check_output(tmp_path / "out.csv", extensions=[".png"])
    with pytest.raises(ConfigError, match="is a folder"):
        check_output(tmp_path)
    (tmp_path / "out.csv").write_text("a\n1\n")
    with pytest.raises(ConfigError, match="exists"):
        check_output(tmp_path / "out.csv")
    assert check_output(tmp_path / "out.csv", overwrite=True) == tmp_path / "out.csv"
    with pytest.raises(ConfigError, match="is an input"):
        check_output(tmp_path / "out.csv", overwrite=True, inputs=[tmp_path / "out.csv"])
    os.symlink(tmp_path / "out.csv", tmp_path / "link.csv")
    with pytest.raises(ConfigError, match="is an input"):  # the same file by another name
        check_output(tmp_path / "link.csv", overwrite=True, inputs=[tmp_path / "out.csv"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_check_output_refuses_an_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            check_output(locked / "out.csv")
    finally:
        locked.chmod(0o700)


def test_unwritable_folder_is_refused_even_for_root(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(ConfigError, match="not writable"):
        check_output(tmp_path / "out.csv")


def test_check_output_folder(tmp_path):
    d = check_output_folder(tmp_path / "new", ["a.csv"])
    assert d.is_dir()
    (d / "a.csv").write_text("x")
    with pytest.raises(ConfigError, match=r"already holds a\.csv"):
        check_output_folder(d, ["a.csv", "b.csv"])
    check_output_folder(d, ["a.csv"], overwrite=True)
    with pytest.raises(ConfigError, match="does not exist"):
        check_output_folder(tmp_path / "no" / "deeper", ["a.csv"])
    with pytest.raises(ConfigError, match="is a file"):
        check_output_folder(d / "a.csv", ["x"])


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path, umask_022):
    df = pd.DataFrame({"a": [1, 2]})
    new = write_table(df, tmp_path / "new.csv")
    assert _mode(new) == 0o644  # not mkstemp's 0600
    os.umask(0o002)
    assert _mode(write_table(df, tmp_path / "other.csv")) == 0o664
    old = tmp_path / "old.csv"
    old.write_text("x\n")
    old.chmod(0o640)
    write_table(df, old)
    assert _mode(old) == 0o640 and pd.read_csv(old)["a"].tolist() == [1, 2]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


# -- the commands ---------------------------------------------------------------------------

def test_vidb_export_checks_out_first_and_refuses_to_overwrite(tmp_workspace, tmp_path,
                                                               umask_022):
    from valueflow.vidb import VIDBStore

    VIDBStore(tmp_workspace).import_seed()
    tmp_workspace.close()
    run = CliRunner().invoke
    assert _fails(run(cli, ["vidb", "export", str(tmp_path / "no" / "x.csv")]),
                  "does not exist")
    assert _fails(run(cli, ["vidb", "export", str(tmp_path / "x.txt")]), "cannot tell the format")
    out = tmp_path / "x.csv"
    r = run(cli, ["vidb", "export", str(out)])
    assert r.exit_code == 0, r.output
    assert _mode(out) == 0o644
    assert _fails(run(cli, ["vidb", "export", str(out)]), "exists")
    assert run(cli, ["vidb", "export", str(out), "--overwrite"]).exit_code == 0


def test_vidb_stats_plot_is_checked_before_reading(tmp_workspace, tmp_path):
    tmp_workspace.close()
    r = CliRunner().invoke(cli, ["vidb", "stats", "--vidb", "seed", "--plot",
                                 str(tmp_path / "x.txt")])
    assert _fails(r, "cannot write a '.txt' file")
    r = CliRunner().invoke(cli, ["vidb", "stats", "--vidb", "seed", "--plot",
                                 str(tmp_path / "gone" / "x.png")])
    assert _fails(r, "does not exist")


def test_vidb_build_checks_out_and_diagnostics_before_any_judge(tmp_workspace, tmp_path):
    tmp_workspace.close()
    texts = [f"Statement {i}" for i in range(6)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    base = ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence", "--judge",
            "openai/nowhere", "--base-url", "http://127.0.0.1:9/v1"]
    run = CliRunner().invoke
    assert _fails(run(cli, [*base, "--out", str(tmp_path / "in.csv")]), "input")
    assert _fails(run(cli, [*base, "--out", str(tmp_path / "missing" / "o.csv")]),
                  "does not exist")
    (tmp_path / "d.csv").write_text("x\n")
    assert _fails(run(cli, [*base, "--diagnostics", str(tmp_path / "d.csv")]), "exists")


def test_report_checks_out_and_n_boot_first(tmp_workspace, tmp_path):
    tmp_workspace.close()
    run = CliRunner().invoke
    assert _fails(run(cli, ["report", "--n-boot", "0", "--out", str(tmp_path / "r.html")]),
                  "--n-boot")
    assert _fails(run(cli, ["report", "--out", str(tmp_path / "gone" / "r.html")]),
                  "does not exist")
    assert _fails(run(cli, ["report", "--out", str(tmp_path / "r.csv")]), "cannot write")
    (tmp_path / "r.html").write_text("<html></html>")
    assert _fails(run(cli, ["report", "--out", str(tmp_path / "r.html")]), "exists")


def test_embed_output_and_input_checks(tmp_path):
    inp = tmp_path / "texts.txt"
    inp.write_text("first text\n\nthird text\n")
    run = CliRunner().invoke
    r = run(cli, ["embed", str(inp), "--out", str(tmp_path / "v.csv")])
    assert _fails(r, "cannot write a '.csv' file")
    assert not (tmp_path / "v.csv.npy").exists() and not (tmp_path / "v.csv").exists()
    assert _fails(run(cli, ["embed", str(inp), "--out", str(tmp_path / "v.npy"),
                            "--batch-size", "0"]), "--batch-size")
    r = run(cli, ["embed", str(inp), "--out", str(tmp_path / "v.npy")])
    assert _fails(r, "blank line(s) (line 2)")
    assert _fails(run(cli, ["embed", str(inp), "--out", str(tmp_path / "gone" / "v.npy")]),
                  "does not exist")


@pytest.mark.slow
def test_embed_rows_match_lines_and_out_is_what_was_asked(tmp_path):
    inp = tmp_path / "texts.txt"
    inp.write_text("first text\nsecond text\nthird text\n\n")  # blank lines at the end: fine
    out = tmp_path / "vectors.npy"
    r = CliRunner().invoke(cli, ["embed", str(inp), "--out", str(out), "--model", "base"])
    assert r.exit_code == 0, r.output
    assert np.load(out).shape[0] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts.txt", "vectors.npy"]


class _StubScorer:
    name = "stub"
    description = "a stub scorer"

    def score(self, texts, value):
        x = np.array([float(len(t) % 7) - 3 for t in texts])
        return np.column_stack([x, x - 1, x + 1])


def test_profile_checks_plot_and_gives_one_text_groups_no_interval(tmp_path, monkeypatch):
    import valueflow.embed as embed

    monkeypatch.setattr(embed, "load_local_scorer", lambda *a, **k: _StubScorer())
    inp = tmp_path / "posts.csv"
    pd.DataFrame({"text": ["alone here", "one", "two texts", "three texts"],
                  "who": ["solo", "pair", "pair", "pair"]}).to_csv(inp, index=False)
    run = CliRunner().invoke
    r = run(cli, ["profile", str(inp), "--plot", str(tmp_path / "x.txt"), "--vidb", "seed"])
    assert _fails(r, "--plot") and _fails(r, "cannot write a '.txt' file")
    assert _fails(run(cli, ["profile", str(inp), "--out", str(inp), "--vidb", "seed"]),
                  "input")
    out = tmp_path / "prof.csv"
    r = run(cli, ["profile", str(inp), "--group-column", "who", "--value", "benevolence",
                  "--vidb", "seed", "--out", str(out), "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    prof = pd.read_csv(out).set_index("group")
    assert np.isnan(prof.loc["solo", "low"]) and np.isnan(prof.loc["solo", "high"])
    assert prof.loc["pair", "low"] < prof.loc["pair", "high"]
    assert "n/a" in r.output and "group(s) of one text" in r.output
    assert (tmp_path / "p.png").stat().st_size > 0


def test_hives_evaluate_checks_outputs_first(tmp_path):
    run = CliRunner().invoke
    r = run(cli, ["hives", "evaluate", "--plot", str(tmp_path / "x.txt")])
    assert _fails(r, "cannot write a '.txt' file")
    r = run(cli, ["hives", "evaluate", "--csv", str(tmp_path / "gone" / "m.csv")])
    assert _fails(r, "does not exist")
    r = run(cli, ["hives", "evaluate", "--csv", str(tmp_path / "m.csv"), "--plot",
                  str(tmp_path / "m.csv")])
    assert _fails(r, "cannot write a '.csv' file")


def test_score_checks_out_before_judging(tmp_workspace, tmp_path):
    tmp_workspace.close()
    inp = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a kind act", "a cruel act"]}).to_csv(inp, index=False)
    run = CliRunner().invoke
    base = ["score", str(inp), "--value", "benevolence", "--vidb", "seed"]
    assert _fails(run(cli, [*base, "--out", str(inp)]), "input")
    assert _fails(run(cli, [*base, "--out", str(tmp_path / "gone" / "s.csv")]),
                  "does not exist")
    (tmp_path / "s.csv").write_text("x\n")
    assert _fails(run(cli, [*base, "--out", str(tmp_path / "s.csv")]), "exists")


def test_study_and_steer_analyze_check_their_folders_first(tmp_workspace, tmp_path):
    tmp_workspace.close()
    data = tmp_path / "data.csv"
    pd.DataFrame({"text": ["a", "b"], "value": ["benevolence"] * 2,
                  "intensity": [1.0, -1.0]}).to_csv(data, index=False)
    out = tmp_path / "study"
    out.mkdir()
    (out / "scores.csv").write_text("old\n")
    r = CliRunner().invoke(cli, ["study", "judges", "--data", str(data), "--judge", "sim/1",
                                 "--out", str(out)])
    assert _fails(r, "already holds scores.csv")
    assert (out / "scores.csv").read_text() == "old\n"
    r = CliRunner().invoke(cli, ["steer", "analyze", "--out", str(tmp_path / "a" / "b")])
    assert _fails(r, "does not exist")


def test_vidb_import_intensity_column_that_is_the_text(tmp_workspace, tmp_path):
    f = tmp_path / "rows.csv"
    pd.DataFrame({"text": ["I help my friend move"], "value": ["benevolence"],
                  "intensity": [9.5]}).to_csv(f, index=False)
    tmp_workspace.close()
    r = CliRunner().invoke(cli, ["vidb", "import", str(f), "--intensity-column", "text"])
    assert isinstance(r.exception, DataError), r.output
    assert "--intensity-column 'text' is the text column" in str(r.exception)
    pd.DataFrame({"text": ["a"], "value": ["benevolence"], "score": ["high"]}).to_csv(
        tmp_path / "words.csv", index=False)
    r = CliRunner().invoke(cli, ["vidb", "import", str(tmp_path / "words.csv"),
                                 "--intensity-column", "score"])
    assert isinstance(r.exception, DataError) and "not a number" in str(r.exception)
