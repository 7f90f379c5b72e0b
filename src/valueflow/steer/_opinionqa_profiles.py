"""Which groups an OpinionQA study covers, and each group's profile prompt.

Profiles come as a folder of per-group files, each named after its group
(:func:`group_file_stem`: ``POLPARTY=Democrat.csv``, a profile table from ``valueflow
profile --out``, or ``POLPARTY=Democrat.txt``, a ready prompt), or as one file for all
groups: a profile table with a ``group`` column, or the JSON object of group -> prompt that
``valueflow profile --prompt-out`` writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from valueflow.errors import ConfigError, DataError
from valueflow.steer._opinionqa_data import OpinionQAData, group_file_stem
from valueflow.steer._profile_prompt import PriorityBins, profile_prompt

__all__ = ["PROFILE_EXTENSIONS", "load_group_profiles", "resolve_groups"]

PROFILE_EXTENSIONS = (".txt", ".csv", ".tsv", ".jsonl", ".json", ".parquet")
"""Files a profiles folder may hold: a profile prompt (.txt) or a profile table."""


def _profile_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise ConfigError(f"--profiles {folder} is not a folder",
                          hint="a folder with one profile per group, named after the group "
                          "(e.g. POLPARTY=Democrat.csv or POLPARTY=Democrat.txt)")
    files: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.suffix.lower() not in PROFILE_EXTENSIONS:
            continue
        if f.stem in files:
            raise DataError(f"--profiles {folder} holds two profiles for {f.stem}: "
                            f"{files[f.stem].name} and {f.name}", hint="keep one")
        files[f.stem] = f
    return files


def _json_prompts(path: Path) -> dict[str, str] | None:
    """The group -> prompt object of a ``profile --prompt-out`` JSON file; ``None`` for a
    JSON file of another shape (a profile table as a list of records)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read profile file {path} as JSON: {exc}",
                        hint="a JSON object of group -> profile prompt (profile "
                        "--prompt-out), or a profile table") from None
    if not isinstance(obj, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
        raise DataError(f"profile file {path} must map each group to its prompt (text)",
                        hint="write it with valueflow profile ... --prompt-out FILE.json")
    return obj


def _file_groups(path: Path) -> list[str]:
    """The groups one profile file holds: the keys of a prompt JSON object, or the
    ``group`` column of a profile table."""
    from valueflow.tables import read_table

    prompts = _json_prompts(path) if path.suffix.lower() == ".json" else None
    if prompts is not None:
        return list(prompts)
    table = read_table(path)
    if "group" not in table.columns:
        raise DataError(f"profile file {path} has no group column, so it names no group",
                        hint="write it with valueflow profile ... --group-column COLUMN (the "
                        "column's values named as CATEGORY=label), or give a folder of "
                        "per-group files")
    return list(dict.fromkeys(str(g) for g in table["group"]))


def resolve_groups(data: OpinionQAData, groups: Sequence[str] | None,
                   profiles: str | os.PathLike[str] | None = None
                   ) -> tuple[list[str], dict[str, Path], list[str]]:
    """The groups to study, each group's profile file, and notes.

    ``profiles`` is a folder of per-group files, each named :func:`group_file_stem` of its
    group (any of :data:`PROFILE_EXTENSIONS`), or one file for several groups: a profile
    table with a ``group`` column, or a JSON object of group -> prompt (``valueflow profile
    --prompt-out``). With ``groups``, each must be in the data, and a group without a
    profile runs with its persona only. Without ``groups``, the groups are those the
    profiles name (each must be a group of the data), else every group of pre-aggregated
    data.

    Raises:
        DataError: a group the data do not have, a profile file that names no group.
        ConfigError: no groups given and none to infer.
    """
    notes: list[str] = []
    if profiles is not None and Path(profiles).is_file():
        path = Path(profiles)
        named = _file_groups(path)
        if groups:
            groups = list(dict.fromkeys(groups))
            data.check_groups(groups)
            unused = [g for g in named if g not in groups]
            if unused:
                notes.append(f"{len(unused)} group(s) of {path.name} are not in this study "
                             f"({', '.join(unused[:3])}" + (" ..." if len(unused) > 3
                                                             else "") + ")")
            return groups, {g: path for g in groups if g in named}, notes
        data.check_groups(named)
        return named, dict.fromkeys(named, path), notes
    files = _profile_files(Path(profiles)) if profiles is not None else {}
    if groups:
        groups = list(dict.fromkeys(groups))
        data.check_groups(groups)
        matched = {g: files[group_file_stem(g)] for g in groups if group_file_stem(g) in files}
        unused = sorted(set(files) - {group_file_stem(g) for g in groups})
        if unused:
            notes.append(f"{len(unused)} profile file(s) name no group of this study and are "
                         f"not used ({', '.join(unused[:3])}" + (" ..." if len(unused) > 3
                                                                  else "") + ")")
        return groups, matched, notes
    available = data.groups()
    if files:
        by_stem: dict[str, list[str]] = {}
        for g in available:
            by_stem.setdefault(group_file_stem(g), []).append(g)
        chosen: dict[str, Path] = {}
        for stem, f in files.items():
            found = by_stem.get(stem, [])
            if len(found) != 1:
                from valueflow.errors import close_matches

                near = close_matches(stem, by_stem)
                raise DataError(
                    f"profile file {f} names " + ("no group" if not found else
                                                  f"{len(found)} groups ({', '.join(found)})")
                    + f" of the OpinionQA data {data.source}",
                    hint=(f"did you mean {near[0]}{f.suffix}? " if near else "")
                    + "name a profile after its group, e.g. POLPARTY=Democrat.csv, or name "
                    "the groups with --groups")
            chosen[found[0]] = f
        return list(chosen), chosen, notes
    if data.pre_aggregated:
        return available, {}, notes
    cats = sorted({g.split("=", 1)[0] for g in available})
    raise ConfigError("name the groups to study",
                      hint="--groups POLPARTY=Democrat,POLPARTY=Republican (or --profiles "
                      f"with one file per group); categories: {', '.join(cats[:12])}")


def load_group_profiles(files: Mapping[str, Path], *, theories: Sequence[str] | None = None,
                        top: int | None = None, min_abs: float = 0.0,
                        bins: PriorityBins | None = None) -> dict[str, str]:
    """Each group's profile prompt from its file: a ``.txt`` file is the prompt itself, a
    JSON object of group -> prompt holds it; a profile table (``valueflow profile --out``)
    becomes one with :func:`profile_prompt` (its ``group`` rows when it holds several
    groups; ``theories``, ``top``, ``min_abs`` and ``bins`` apply to tables only).

    Raises:
        DataError: an empty prompt file, a table without the group, a profile with values
            no theory knows or none left in ``theories``.
    """
    from valueflow.tables import read_table

    out: dict[str, str] = {}
    for group, path in files.items():
        source = f"profile file {path}"
        prompts = _json_prompts(path) if path.suffix.lower() == ".json" else None
        if prompts is not None:
            if not prompts.get(group, "").strip():
                raise DataError(f"{source} has no prompt for {group!r}",
                                hint="give each group a non-empty prompt")
            out[group] = prompts[group].strip()
            continue
        if path.suffix.lower() == ".txt":
            text = path.read_text(encoding="utf-8").strip()
            if not text:
                raise DataError(f"{source} is empty", hint="write the profile prompt in it, "
                                "e.g. with valueflow profile ... --prompt-out")
            out[group] = text
            continue
        table = read_table(path)
        if "group" in table.columns:
            names = [str(g) for g in table["group"]]
            if len(set(names)) > 1:
                keep = [n == group or group_file_stem(n) == group_file_stem(group)
                        for n in names]
                if not any(keep):
                    raise DataError(f"{source} holds the groups "
                                    f"{', '.join(sorted(set(names))[:5])} but not {group!r}",
                                    hint="give each group its own profile file")
                table = table[keep]
        out[group] = profile_prompt(table, theories=theories, top=top, min_abs=min_abs,
                                    bins=bins, source=source)
    return out
