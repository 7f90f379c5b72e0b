from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.errors import DataError
from valueflow.vidb import VIDBStore, load_seed, load_vidb, normalize_vidb_frame


def _frame(**cols):
    return pd.DataFrame(cols)


def test_normalize_maps_columns_resolves_values_and_derives_direction():
    raw = _frame(sentence=["I help my sister", "Nothing to see", "I cheat my friends"],
                 final_rating=[7.5, 0.2, -8.0], v=["benevolence", "Benevolence", "schwartz:benevolence"])
    out = normalize_vidb_frame(raw, source_name="x.csv", columns={"text": "sentence", "value": "v"})
    assert out["value"].tolist() == ["schwartz:benevolence"] * 3
    assert out["theory"].tolist() == ["schwartz"] * 3
    assert out["direction"].tolist() == ["supports", "neutral", "opposes"]
    assert out["intensity"].tolist() == [7.5, 0.2, -8.0]
    assert out["item_id"].is_unique


def test_validation_lists_every_offending_row():
    raw = _frame(text=["ok", "  ", "fine", "also"], value=["benevolence", "benevolence",
                 "benevolense", "power"], intensity=[1, 2, 3, 44])
    with pytest.raises(DataError) as info:
        normalize_vidb_frame(raw, source_name="bad.csv")
    msg = str(info.value)
    assert "empty text in row 2" in msg
    assert "outside [-10, 10] in row 4" in msg
    assert "unknown value 'benevolense' in row 3" in msg
    assert "benevolence" in msg.split("benevolense", 1)[1]  # close match offered
    assert "nothing was imported" in msg


def test_missing_column_and_duplicates_are_reported():
    with pytest.raises(DataError, match=r"(?s)no column 'text'.*did you mean 'Text'"):
        normalize_vidb_frame(_frame(Text=["a"], value=["power"], intensity=[1]),
                             source_name="f.csv")
    with pytest.raises(DataError, match="duplicate text for the same value in row 2"):
        normalize_vidb_frame(_frame(text=["Same  text", "same text"], value=["power", "power"],
                                    intensity=[1, 2]), source_name="f.csv")
    with pytest.raises(DataError, match="not a number in row 1"):
        normalize_vidb_frame(_frame(text=["a"], value=["power"], intensity=["high"]),
                             source_name="f.csv")


def test_import_is_all_or_nothing_and_conflicts(tmp_workspace, tmp_path):
    store = VIDBStore(tmp_workspace)
    good = tmp_path / "good.csv"
    _frame(text=["a text", "b text"], value=["power", "power"], intensity=[3, -3]).to_csv(good, index=False)
    assert store.import_file(good, license="CC-BY-4.0") == 2
    bad = tmp_path / "bad.jsonl"
    _frame(text=["c text", ""], value=["power", "power"], intensity=[1, 1]).to_json(
        bad, orient="records", lines=True)
    with pytest.raises(DataError, match="empty text"):
        store.import_file(bad)
    assert store.count() == 2
    with pytest.raises(DataError, match="already in the VIDB"):
        store.import_file(good)
    assert store.count() == 2
    assert store.import_file(good, on_conflict="skip") == 0
    changed = tmp_path / "changed.parquet"
    _frame(text=["a text"], value=["power"], intensity=[9.0]).to_parquet(changed)
    assert store.import_file(changed, on_conflict="replace") == 1
    df = store.to_frame(["power"])
    assert dict(zip(df.text, df.intensity, strict=True)) == {"a text": 9.0, "b text": -3.0}
    assert set(df.license.dropna()) == {"CC-BY-4.0"}


def test_export_round_trip(tmp_workspace, tmp_path):
    store = VIDBStore(tmp_workspace)
    store.add(normalize_vidb_frame(_frame(text=["x1", "x2"], value=["mft:care_harm"] * 2,
                                          intensity=[5.0, -5.0]), source_name="t"))
    for ext in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"out.{ext}"
        assert store.export(out) == 2
        back = load_vidb(str(out))
        assert sorted(back.intensity) == [-5.0, 5.0]
        assert set(back.value) == {"mft:care_harm"}


def test_seed_covers_the_32_values_over_the_whole_scale():
    from valueflow.theories import EVALUATION_VALUE_IDS

    seed = load_seed()
    counts = seed.groupby("value").size()
    assert set(counts.index) == set(EVALUATION_VALUE_IDS)
    assert counts.min() >= 60
    for value, g in seed.groupby("value"):
        x = g.intensity
        assert x.min() <= -7 and x.max() >= 7, value
        assert (x.abs() <= 0.5).sum() >= 4, value  # neutral or unrelated texts present
    assert seed.provenance.str.contains("authored").all()


def test_seed_minimal_pairs_hold_one_situation_of_one_value_at_different_intensities():
    # The fine-tuning's pair loss orders the texts of a pair id: a pair split over two values
    # or two registers, a lone text, or equal intensities would teach nothing or the wrong thing.
    from valueflow.vidb._seed import judge_training_frame

    frame = judge_training_frame()
    groups = frame[frame["pair"].notna()].groupby("pair")
    assert len(groups) > 1100
    assert groups.size().min() >= 2
    assert (groups["value"].nunique() == 1).all() and (groups["register"].nunique() == 1).all()
    assert (groups["intensity"].agg(lambda x: x.max() - x.min()) >= 1).all()
    # every register of the seed has pairs
    assert set(frame.loc[frame["pair"].notna(), "register"]) >= set(frame["register"]) - {
        "v1-sentences", "v1-responses"}


def test_cli_import_stats_export(tmp_workspace, tmp_path):
    tmp_workspace.close()  # the CLI opens the workspace itself
    runner = CliRunner()
    src = tmp_path / "in.csv"
    _frame(text=["t1", "t2", "t3"], final_rating=[-9, 0, 9]).to_csv(src, index=False)
    res = runner.invoke(cli, ["vidb", "import", str(src), "--value", "ross:fidelity"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["vidb", "stats", "--json", "--plot", str(tmp_path / "h.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["n_items"] == 3
    (row,) = data["values"]
    assert row["value"] == "ross:fidelity" and row["histogram"][0] == 1 and row["histogram"][-1] == 1
    assert (tmp_path / "h.png").stat().st_size > 1000
    res = runner.invoke(cli, ["vidb", "export", str(tmp_path / "o.parquet")])
    assert res.exit_code == 0 and len(pd.read_parquet(tmp_path / "o.parquet")) == 3


@pytest.mark.parametrize(("name", "expected"), [
    ("Benevolence_pvq_flag_aggregated.csv", "schwartz:benevolence"),
    ("Self-Direction_pvq_flag_aggregated.csv", "schwartz:self_direction"),
    ("justice_mft_flag_aggregated.csv", "mft:justice"),
    ("justice_duty_flag_aggregated.csv", "ross:justice"),
    ("Right to life_rights_flag_aggregated.csv", "rights:right_to_life"),
    ("Social Rights_rights.parquet", "rights:social_rights"),
    ("pvq_achievement.jsonl", "schwartz:achievement"),
    ("care.csv.gz", "mft:care_harm"),
    ("data.csv", None),                        # names no value
    ("train-00000-of-00001.parquet", None),    # a dataset shard
    ("justice.csv", None),                     # ambiguous without a theory
])
def test_value_from_filename(name, expected):
    from valueflow.vidb._store import value_from_filename

    assert value_from_filename(name) == expected


def _published_layout(root):
    """The published VIDB's layout: one CSV per value, `text` and `final_rating` only."""
    folder = root / "final_ratings"
    folder.mkdir()
    _frame(text=["I sat with my neighbour after the funeral.", "I took credit for her work."],
           final_rating=[7.0, -6.5]).to_csv(folder / "Benevolence_pvq_flag_aggregated.csv",
                                            index=False)
    _frame(text=["I kept the promise I made to my father.", "The train left at noon."],
           final_rating=[8.0, 0.0]).to_csv(folder / "fidelity_duty_flag_aggregated.csv",
                                           index=False)
    return folder


def test_folder_import_takes_each_value_from_its_file_name(tmp_workspace, tmp_path):
    folder = _published_layout(tmp_path)
    store = VIDBStore(tmp_workspace)
    assert store.import_file(folder) == 4
    df = store.to_frame()
    assert dict(zip(df.text, df.value, strict=True)) == {
        "I sat with my neighbour after the funeral.": "schwartz:benevolence",
        "I took credit for her work.": "schwartz:benevolence",
        "I kept the promise I made to my father.": "ross:fidelity",
        "The train left at noon.": "ross:fidelity"}
    # load_vidb reads the same folder without a workspace.
    assert len(load_vidb(folder, values=["fidelity"])) == 2
    # Shards in a folder named after their value.
    (tmp_path / "shards" / "power").mkdir(parents=True)
    _frame(text=["I run the board."], final_rating=[6.0]).to_parquet(
        tmp_path / "shards" / "power" / "train-00000-of-00001.parquet")
    assert load_vidb(tmp_path / "shards")["value"].tolist() == ["schwartz:power"]


def test_folder_import_is_all_or_nothing_and_names_the_file(tmp_workspace, tmp_path):
    folder = _published_layout(tmp_path)
    _frame(text=["x", "y"], final_rating=[1, 2]).to_csv(folder / "notes.csv", index=False)
    store = VIDBStore(tmp_workspace)
    with pytest.raises(DataError, match=r"notes\.csv has no column 'value' and its file name"):
        store.import_file(folder)
    assert store.count() == 0


def test_skip_invalid_leaves_out_stray_rows_and_counts_them(tmp_workspace, tmp_path):
    src = tmp_path / "power.csv"
    _frame(text=["I run the board.", "", "I run the board.", "I obey quietly."],
           final_rating=[6.0, 2.0, 5.0, None]).to_csv(src, index=False)
    store = VIDBStore(tmp_workspace)
    with pytest.raises(DataError, match="empty text in row 2"):
        store.import_file(src)
    assert store.import_file(src, skip_invalid=True) == 1
    assert store.last_skipped == {"empty text": 1, "missing intensity": 1, "repeated text": 1}
    assert store.to_frame()["intensity"].tolist() == [6.0]  # the first of a repeated text
    # Out-of-range intensities still refuse: they mean a wrong scale, not a stray row.
    (tmp_path / "b").mkdir()
    bad = tmp_path / "b" / "power.csv"
    _frame(text=["I rule."], final_rating=[42]).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"outside \[-10, 10\]"):
        store.import_file(bad, skip_invalid=True)


def test_load_vidb_keeps_minimal_pair_ids_scoped_by_file(tmp_path):
    import numpy as np

    from valueflow.embed._finetune import _pair_ids

    a = tmp_path / "a.csv"
    a.write_text("text,value,intensity,pair\n"
                 "I stood by my brother in court,loyalty,6,1\n"
                 "I abandoned my brother in court,loyalty,-6,1\n"
                 "I kept the family dinner going,loyalty,4,\n", encoding="utf-8")
    b = tmp_path / "b.csv"
    b.write_text("text,value,intensity,pair\n"
                 "I kept my promise to the team,loyalty,5,1\n"
                 "I broke my promise to the team,loyalty,-5,1\n", encoding="utf-8")
    df = load_vidb(tmp_path)
    by_text = dict(zip(df["text"], df["pair"], strict=True))
    assert by_text["I stood by my brother in court"] == by_text["I abandoned my brother in court"]
    assert pd.isna(by_text["I kept the family dinner going"])
    # the same id in two files is two pairs, not one group of four
    assert by_text["I kept my promise to the team"] != by_text["I stood by my brother in court"]
    ids = _pair_ids(df)
    assert sorted(np.bincount(ids[ids >= 0]).tolist()) == [2, 2]
