"""The seed VIDB shipped with ValueFlow: texts and intensities written by its developers."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

from valueflow.vidb._frame import normalize_vidb_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SEED_LICENSE",
    "SEED_PROVENANCE",
    "STANCE_HELDOUT",
    "judge_training_frame",
    "load_neutral_texts",
    "load_seed",
    "load_stance_pairs",
    "seed_pair_ids",
    "seed_register",
    "seed_registers",
]

SEED_PROVENANCE = (
    "seed VIDB written by the ValueFlow developers; intensities are authored by hand, "
    "not measured with judges"
)
SEED_LICENSE = "Apache-2.0"


@lru_cache(maxsize=4)
def _read_csv_files(sub: str) -> tuple[tuple[str, pd.DataFrame], ...]:
    """``(file name, table)`` of every CSV file in the package folder ``data/<sub>``, in name
    order, read once per process (callers must not modify the tables)."""
    import pandas as pd

    folder = resources.files("valueflow.vidb") / "data" / sub
    out = []
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".csv"):
                with entry.open("r", encoding="utf-8") as fh:
                    out.append((entry.name, pd.read_csv(fh, keep_default_na=False,
                                                        na_values=[""])))
    return tuple(out)


@lru_cache(maxsize=1)
def _seed_frame() -> pd.DataFrame:
    import pandas as pd

    frames = []
    for name, raw in _read_csv_files("seed"):
        if "register" in raw.columns:
            # seed v2 files tag each text's register: it becomes the row's dataset
            raw = raw.assign(dataset="seed/" + raw["register"].astype(str)).drop(
                columns=["register", "pair"], errors="ignore")
        frames.append(
            normalize_vidb_frame(
                raw,
                source_name=f"seed/{name}",
                source="valueflow-seed",
                license=SEED_LICENSE,
                dataset=seed_register(name),
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

    frames = [raw for _, raw in _read_csv_files("neutral")]
    if not frames:
        return pd.DataFrame({"text": [], "register": []})
    out = pd.concat(frames, ignore_index=True)[["text", "register"]]
    return out.dropna(subset=["text"]).reset_index(drop=True)


#: Values whose stance pairs a judge trained with ``judge_training_frame("train")`` never
#: sees: they are written by another hand than the rest and test whether the stance it learned
#: carries over to values (and an author) it was not shown (``load_stance_pairs("heldout")``).
#: The shipped judge trains on no stance pairs at all.
STANCE_HELDOUT = frozenset({
    "mft:liberty_oppression", "rights:cultural_rights", "rights:social_group_solidarity_rights",
    "ross:gratitude", "ross:self_improvement", "schwartz:face", "schwartz:security",
    "schwartz:universalism"})


@lru_cache(maxsize=1)
def _stance_frame() -> pd.DataFrame:
    import pandas as pd

    frames = []
    for name, raw in _read_csv_files("stance"):
        norm = normalize_vidb_frame(
            raw.astype({"pair": str, "contrast": str, "register": str}).assign(
                dataset="stance/" + raw["register"].astype(str)),
            source_name=f"stance/{name}", source="valueflow-stance", license=SEED_LICENSE,
            provenance=SEED_PROVENANCE, source_kind="seed",
            keep=("pair", "contrast", "register"))
        norm["pair"] = f"stance/{name.removesuffix('.csv')}:" + norm["pair"]
        frames.append(norm)
    if not frames:
        return pd.DataFrame(columns=["text", "value", "intensity", "pair", "contrast",
                                     "register"])
    return pd.concat(frames, ignore_index=True)


def load_stance_pairs(split: str = "all") -> pd.DataFrame:
    """Minimal pairs written by the ValueFlow developers to teach stance: two texts about the
    same situation with opposite (or, for ``contrast == "degree"``, much weaker) stance toward
    one value — a negation, a refusal, approval against regret, sarcasm, two values in
    conflict. VIDB columns plus ``pair`` (shared by the two texts), ``contrast`` and
    ``register``.

    Args:
        split: ``"all"``, ``"train"`` (all values but :data:`STANCE_HELDOUT`, for a judge
            trained with ``judge_training_frame("train")``) or ``"heldout"`` (those eight).
            The shipped judge trains on none of them.
    """
    if split not in ("all", "train", "heldout"):
        from valueflow.errors import ConfigError

        raise ConfigError(f"unknown stance split {split!r}", hint="all, train or heldout")
    df = _stance_frame()
    if split != "all":
        held = df["value"].isin(STANCE_HELDOUT)
        df = df[held if split == "heldout" else ~held]
    return df.reset_index(drop=True).copy()


@lru_cache(maxsize=1)
def _seed_pair_map() -> dict[tuple[str, str], str]:
    from valueflow.theories import resolve_value

    out: dict[tuple[str, str], str] = {}
    for name, raw in _read_csv_files("seed"):
        if "pair" not in raw.columns:
            continue
        for value, text, pair in zip(raw["value"], raw["text"], raw["pair"], strict=True):
            if isinstance(pair, str) and pair.strip():
                out[(resolve_value(str(value)).id, str(text).strip())] = f"seed/{name}:{pair}"
    return out


def seed_pair_ids(frame: pd.DataFrame) -> pd.Series:
    """The minimal-pair id of each row of a seed frame (``None`` where the row has no pair):
    the seed v2 files pair some texts with an opposite-stance twin."""
    import pandas as pd

    pairs = _seed_pair_map()
    return pd.Series([pairs.get((str(v), str(t))) for v, t in
                      zip(frame["value"], frame["text"], strict=True)], index=frame.index,
                     dtype=object)


def judge_training_frame(stance: str = "none") -> pd.DataFrame:
    """A local judge's training set: the seed VIDB with its minimal-pair ids, plus the stance
    pairs of ``stance`` (``"none"``: what the shipped judge trains on, so every stance pair is
    a test for it; ``"train"``: all but :data:`STANCE_HELDOUT`; ``"all"``). Columns: the VIDB
    columns, ``pair`` (``None`` for unpaired texts) and ``register``."""
    import pandas as pd

    seed = load_seed()
    seed = seed.assign(pair=seed_pair_ids(seed), register=seed_registers(seed).to_numpy())
    if stance == "none":
        return seed
    extra = load_stance_pairs(stance).drop(columns=["contrast"])
    return pd.concat([seed, extra[seed.columns]], ignore_index=True)
