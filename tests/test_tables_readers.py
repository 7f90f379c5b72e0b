"""The one table reader: .txt inputs, text inputs, reference tables and the text key."""

from __future__ import annotations

import pandas as pd
import pytest

from valueflow.errors import DataError, UnknownNameError
from valueflow.tables import read_references, read_table, read_texts, text_key


def test_a_txt_file_is_one_text_per_line(tmp_path):
    p = tmp_path / "in.txt"
    p.write_text("first text\r\n\n  second, indented\nthird\n\n", encoding="utf-8")
    df = read_table(p, text_column="prompt")
    assert df["prompt"].tolist() == ["first text", "  second, indented", "third"]
    assert read_texts(p)["text"].tolist()[0] == "first text"


def test_read_texts_names_a_missing_column_and_empty_rows(tmp_path):
    p = tmp_path / "in.csv"
    pd.DataFrame({"txt": ["a"]}).to_csv(p, index=False)
    with pytest.raises(DataError, match="no column 'text'"):
        read_texts(p)
    pd.DataFrame({"text": ["a", None, "c"]}).to_csv(p, index=False)
    with pytest.raises(DataError, match=r"1 rows of .* have no text \(rows 2\)"):
        read_texts(p)


def test_references_resolve_values_and_check_intensities(tmp_path):
    p = tmp_path / "ref.csv"
    pd.DataFrame({"text": ["kind", "cruel"], "value": ["benevolence", "Care/Harm"],
                  "final_rating": [7, -8]}).to_csv(p, index=False)
    refs = read_references(p)
    assert refs["value"].tolist() == ["schwartz:benevolence", "mft:care_harm"]
    assert refs["intensity"].tolist() == [7.0, -8.0]
    with pytest.raises(DataError, match=r"in \[-5, 5\]"):
        read_references(p, limit=5)
    pd.DataFrame({"text": ["a", "b"], "intensity": [1, "x"]}).to_csv(p, index=False)
    with pytest.raises(DataError, match=r"--sim-truth ref.csv: intensity is missing or not a "
                       r"number in 1 row\(s\)"):
        read_references(p, source="--sim-truth ref.csv")
    assert read_references(p, skip_missing=True)["text"].tolist() == ["a"]
    pd.DataFrame({"text": ["a"], "value": ["benevolense"], "intensity": [1]}).to_csv(
        p, index=False)
    with pytest.raises(UnknownNameError, match="benevolense"):
        read_references(p)


def test_text_key_flattens_spacing_and_case():
    assert text_key("  Be \n KIND\t") == text_key("be kind") == "be kind"
    assert text_key("be kind") != text_key("be kinder")
