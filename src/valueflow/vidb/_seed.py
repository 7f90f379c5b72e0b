"""The seed VIDB shipped with ValueFlow: texts and intensities written by its developers."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

from valueflow.vidb._frame import normalize_vidb_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SEED_LICENSE", "SEED_PROVENANCE", "load_neutral_texts", "load_seed", "seed_register",
           "seed_registers"]

SEED_PROVENANCE = (
    "seed VIDB written by the ValueFlow developers; intensities are authored by hand, "
    "not measured with judges"
)
SEED_LICENSE = "Apache-2.0"


@lru_cache(maxsize=1)
def _seed_frame() -> pd.DataFrame:
    import pandas as pd

    folder = resources.files("valueflow.vidb") / "data" / "seed"
    frames = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".csv"):
            with entry.open("r", encoding="utf-8") as fh:
                raw = pd.read_csv(fh, keep_default_na=False, na_values=[""])
            if "register" in raw.columns:
                # seed v2 files tag each text's register: it becomes the row's dataset
                raw = raw.assign(dataset="seed/" + raw.pop("register").astype(str))
                raw = raw.drop(columns=["pair"], errors="ignore")
            frames.append(
                normalize_vidb_frame(
                    raw,
                    source_name=f"seed/{entry.name}",
                    source="valueflow-seed",
                    license=SEED_LICENSE,
                    dataset=seed_register(entry.name),
                    provenance=SEED_PROVENANCE,
                    source_kind="seed",
                )
            )
    if not frames:
        return normalize_vidb_frame(
            pd.DataFrame({"text": [], "value": [], "intensity": []}), source_name="seed",
            source_kind="seed")
    return pd.concat(frames, ignore_index=True)


def seed_register(file_name: str) -> str:
    """The register group of the first seed's files (``seed/v1-sentences`` for the short
    mixed-register files, ``seed/v1-responses`` for the assistant answers and longer posts)."""
    return "seed/v1-responses" if file_name.startswith("responses") else "seed/v1-sentences"


def seed_registers(frame: pd.DataFrame) -> pd.Series:
    """The register of each seed row (``phrase``, ``title``, ``news``, ..., ``v1-sentences``)."""
    return frame["dataset"].astype(str).str.removeprefix("seed/")


def load_seed(values: list[str] | None = None) -> pd.DataFrame:
    """The bundled seed VIDB as a DataFrame with the canonical VIDB columns.

    Args:
        values: Only these values (any accepted spelling); default all 32.
    """
    df = _seed_frame()
    if values:
        from valueflow.theories import resolve_value

        ids = {resolve_value(v).id for v in values}
        df = df[df["value"].isin(ids)]
    return df.reset_index(drop=True).copy()


@lru_cache(maxsize=1)
def load_neutral_texts() -> pd.DataFrame:
    """Everyday texts that express no value (greetings, requests, questions of fact, logistics,
    instructions ...), written by the ValueFlow developers: ``text`` and ``register``. They
    teach the local judge's relevance heads what value-free text looks like; they are not VIDB
    rows (no value, no intensity)."""
    import pandas as pd

    folder = resources.files("valueflow.vidb") / "data" / "neutral"
    frames = []
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".csv"):
                with entry.open("r", encoding="utf-8") as fh:
                    frames.append(pd.read_csv(fh, keep_default_na=False, na_values=[""]))
    if not frames:
        return pd.DataFrame({"text": [], "register": []})
    out = pd.concat(frames, ignore_index=True)[["text", "register"]]
    return out.dropna(subset=["text"]).reset_index(drop=True)
