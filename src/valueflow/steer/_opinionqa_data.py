"""OpinionQA data: survey questions and each demographic group's answer distribution.

OpinionQA (Santurkar et al. 2023, "Whose Opinions Do Language Models Reflect?") turns Pew
American Trends Panel surveys into multiple-choice questions with ordered answer options.
We read two layouts, neither of which we ship (the data are Pew's and the authors'):

**The release** — a folder with one subfolder per survey (``American_Trends_Panel_W26/``
...), or a single survey folder, each holding

* ``info.csv``: one row per question, with ``key`` (the question's column in
  ``responses.csv``), ``question`` (its text), ``references`` (the answer options as a
  Python list literal, in the order the survey showed them) and ``option_mapping`` (a dict
  literal between option texts and their numeric codes, in either direction); an
  ``option_ordinal`` column (a list literal), when present, gives the ordinal position of
  the first options of ``references`` and takes precedence over the codes;
* ``responses.csv``: one row per respondent, the chosen option's text (or code) in each
  question's column, demographic columns (``POLPARTY``, ``AGE``, ``SEX`` ...) and a weight
  column (``WEIGHT_W26``, or the one column whose name starts with ``WEIGHT``).

An option without an ordinal position (``Refused``; a code of 99 or more; an option the
mapping leaves out) is not an opinion on the question's scale: it is dropped from the
options and its answers from the distributions. A group's distribution over the remaining
options is the weighted share of the group's respondents who chose each.

**Pre-aggregated items** — a JSON list or JSONL file of items, one per question and
group, with the fields

* ``question``: the question text;
* ``options``: the answer options, in display order;
* ``group``: the group, as ``CATEGORY=label`` (``POLPARTY=Democrat``);
* ``distribution``: the group's share for each option (normalised on reading);
* ``id`` (optional): the question's id (default: derived from text and options);
* ``ordinal`` (optional): positions of the first options; options beyond it are dropped,
  and without it the options are at 1..K with an option named ``Refused`` dropped;
* ``survey`` (optional): where the question comes from.

A group is named ``CATEGORY=label`` throughout: the demographic column and its value.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.errors import DataError, close_matches

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CATEGORY_NAMES",
    "OpinionQAData",
    "SurveyQuestion",
    "group_file_stem",
    "load_opinionqa",
    "persona_sentence",
    "split_groups",
]

#: Readable names of the release's demographic columns, for persona sentences.
CATEGORY_NAMES: dict[str, str] = {
    "CREGION": "region", "AGE": "age", "SEX": "sex", "EDUCATION": "education",
    "CITIZEN": "citizenship", "MARITAL": "marital status", "RELIG": "religion",
    "RELIGATTEND": "religious attendance", "POLPARTY": "political party",
    "INCOME": "income", "POLIDEOLOGY": "political ideology", "RACE": "race",
}

_REFUSAL_CODE = 99.0  # Pew codes refusals and "don't know" as 99
_INFO_HINT = ("info.csv has key, question, references (e.g. ['Yes', 'No', 'Refused']) and "
              "option_mapping (e.g. {1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}) per question")
_ITEM_HINT = ('an item is {"question": ..., "options": [...], "group": "CATEGORY=label", '
              '"distribution": [one share per option]}')


@dataclass(frozen=True)
class SurveyQuestion:
    """One multiple-choice question with ordered options.

    Attributes:
        id: ``<survey>/<key>`` for the release, the item's ``id`` otherwise.
        text: The question.
        options: The options with an ordinal position, in display order.
        positions: Each option's ordinal position (the scale the distance is taken on).
        survey: The survey it comes from.
    """

    id: str
    text: str
    options: tuple[str, ...]
    positions: tuple[float, ...]
    survey: str = ""

    @property
    def is_ordered(self) -> bool:
        """Whether the options span a scale (at least two distinct positions)."""
        return len(self.options) >= 2 and len(set(self.positions)) >= 2


@dataclass
class _Survey:
    name: str
    responses: pd.DataFrame
    weight: str
    columns: dict[str, str]  # question id -> responses column
    lookups: dict[str, dict[str, int]]  # question id -> answer (text or code) -> option
    keys: set[str]  # every question column info.csv names, used or not


@dataclass
class OpinionQAData:
    """Questions and human answer distributions per group, read by :func:`load_opinionqa`.

    Attributes:
        questions: Ordered questions by id (unordered ones are left out, see ``notes``).
        source: The file or folder read.
        notes: What was left out on reading, one line each.
    """

    questions: dict[str, SurveyQuestion]
    source: str
    notes: list[str] = field(default_factory=list)
    _surveys: list[_Survey] = field(default_factory=list, repr=False)
    _given: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def pre_aggregated(self) -> bool:
        """Whether the data came as pre-aggregated items (their groups are few, and named)."""
        return bool(self._given)

    def groups(self) -> list[str]:
        """Every group the data has, ``CATEGORY=label``, sorted."""
        found = set(self._given)
        for s in self._surveys:
            for col in _demographic_columns(s):
                found.update(f"{col}={v}" for v in s.responses[col].dropna().astype(str))
        return sorted(found)

    def check_groups(self, groups: Sequence[str]) -> None:
        """Raise a one-line :class:`DataError` for a group the data do not have."""
        have = set(self.groups())
        for g in groups:
            if g in have:
                continue
            cat = g.split("=", 1)[0]
            same_cat = sorted(h for h in have if h.split("=", 1)[0] == cat)
            near = close_matches(g, have)
            if "=" not in g:
                hint = "name a group as CATEGORY=label, e.g. POLPARTY=Democrat"
            elif same_cat:
                hint = f"{cat} has: {', '.join(s.split('=', 1)[1] for s in same_cat[:12])}"
            else:
                cats = sorted({h.split("=", 1)[0] for h in have})
                hint = f"categories: {', '.join(cats[:15])}"
            if near:
                hint = f"did you mean {near[0]!r}? " + hint
            raise DataError(f"the OpinionQA data {self.source} have no group {g!r}", hint=hint)

    def distributions(self, group: str) -> dict[str, np.ndarray]:
        """The group's answer distribution per question id (questions nobody of the group
        answered with an ordered option are missing)."""
        if group in self._given:
            return dict(self._given[group])
        cat, _, label = group.partition("=")
        out: dict[str, np.ndarray] = {}
        for s in self._surveys:
            if cat not in s.responses.columns:
                continue
            rows = s.responses[s.responses[cat].astype(str) == label]
            if rows.empty:
                continue
            w = rows[s.weight].to_numpy(dtype=float)
            for qid, col in s.columns.items():
                dist = _weighted_shares(rows[col], w, s.lookups[qid],
                                        len(self.questions[qid].options))
                if dist is not None:
                    out[qid] = dist
        return out


# -- reading the release -------------------------------------------------------------------
def _literal(raw: Any, what: str, where: str) -> Any:
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(f"{where}: {what} is empty", hint=_INFO_HINT)
    try:
        return ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise DataError(f"{where}: cannot read {what} {raw[:60]!r}",
                        hint=f"{what} must be a Python literal, e.g. "
                        + ("{1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}" if what == "option_mapping"
                           else "['Yes', 'No', 'Refused']")) from None


def _codes(mapping: Any, where: str) -> dict[str, float]:
    """Option text -> numeric code, from a mapping in either direction."""
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(f"{where}: option_mapping is not a non-empty dict",
                        hint="e.g. {1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}")
    out: dict[str, float] = {}
    for k, v in mapping.items():
        if isinstance(k, int | float) and isinstance(v, str):
            out[v.strip()] = float(k)
        elif isinstance(k, str) and isinstance(v, int | float):
            out[k.strip()] = float(v)
        else:
            raise DataError(f"{where}: option_mapping pairs {k!r} with {v!r}; it must map "
                            "codes to option texts (or texts to codes)",
                            hint="e.g. {1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}")
    return out


def _release_question(row: Mapping[Any, Any], survey: str, where: str
                      ) -> tuple[SurveyQuestion, dict[str, int]]:
    """The question of an info.csv row, and how answers (texts, or codes) map to its
    options."""
    key = str(row["key"]).strip()
    where = f"{where} question {key}"
    codes = _codes(_literal(row.get("option_mapping"), "option_mapping", where), where)
    raw_refs = row.get("references")
    if isinstance(raw_refs, str) and raw_refs.strip():
        refs = _literal(raw_refs, "references", where)
        if not isinstance(refs, list | tuple) or not all(isinstance(r, str) for r in refs):
            raise DataError(f"{where}: references is not a list of option texts",
                            hint=_INFO_HINT)
        refs = [r.strip() for r in refs]
    else:
        refs = [t for t, _ in sorted(codes.items(), key=lambda kv: kv[1])]
    raw_ord = row.get("option_ordinal")
    options: list[str] = []
    positions: list[float] = []
    if isinstance(raw_ord, str) and raw_ord.strip():
        ords = _literal(raw_ord, "option_ordinal", where)
        if not isinstance(ords, list | tuple) or len(ords) > len(refs):
            raise DataError(f"{where}: option_ordinal must list at most one position per "
                            f"option ({len(refs)})", hint=_INFO_HINT)
        for text, pos in zip(refs, ords, strict=False):
            options.append(text)
            positions.append(float(pos))
    else:
        for text in refs:
            code = codes.get(text)
            if code is None or code >= _REFUSAL_CODE or text.lower() == "refused":
                continue
            options.append(text)
            positions.append(code)
    q = SurveyQuestion(f"{survey}/{key}", " ".join(str(row["question"]).split()),
                       tuple(options), tuple(positions), survey)
    lookup = {text.lower(): i for i, text in enumerate(options)}
    for text, code in codes.items():  # a responses file may hold codes instead of texts
        i = lookup.get(text.lower())
        if i is not None:
            lookup.setdefault(f"{code:g}", i)
            lookup.setdefault(f"{code:.1f}", i)
    return q, lookup


def _weight_column(df: pd.DataFrame, survey: str, where: str) -> str:
    wave = re.search(r"(W\d+)$", survey)
    if wave and f"WEIGHT_{wave.group(1)}" in df.columns:
        return f"WEIGHT_{wave.group(1)}"
    cands = [c for c in df.columns if str(c).upper().startswith("WEIGHT")]
    if len(cands) == 1:
        return str(cands[0])
    raise DataError(f"{where} has {'no' if not cands else len(cands)} weight column"
                    f"{'s' if cands else ''} ({', '.join(map(str, cands)) or 'none'})",
                    hint="name the survey weight WEIGHT_<wave> (e.g. WEIGHT_W26)")


def _demographic_columns(s: _Survey) -> list[str]:
    skip = s.keys | {s.weight}
    return [str(c) for c in s.responses.columns
            if c not in skip and not str(c).upper().startswith("WEIGHT")
            and not str(c).upper().startswith("QKEY")]


def _read_survey(folder: Path, data: OpinionQAData) -> None:
    import pandas as pd

    from valueflow.tables import read_table, require_columns

    name = folder.name
    info_path, resp_path = folder / "info.csv", folder / "responses.csv"
    missing = [p.name for p in (info_path, resp_path) if not p.is_file()]
    if missing:
        raise DataError(f"OpinionQA survey folder {folder} has no {' or '.join(missing)}",
                        hint="each survey folder needs info.csv and responses.csv")
    info = read_table(info_path)
    require_columns(info, ["key", "question", "option_mapping"], source=str(info_path))
    try:
        responses = pd.read_csv(resp_path, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {resp_path}: {exc}",
                        hint="responses.csv is a CSV file, one row per respondent") from exc
    weight = _weight_column(responses, name, str(resp_path))
    w = pd.to_numeric(responses[weight], errors="coerce")
    if (w < 0).any():
        raise DataError(f"{resp_path}: the weight column {weight} has negative weights",
                        hint="survey weights are >= 0")
    responses[weight] = w.fillna(0.0)
    columns: dict[str, str] = {}
    lookups: dict[str, dict[str, int]] = {}
    absent, unordered = [], 0
    for row in info.to_dict("records"):
        q, lookup = _release_question(row, name, str(info_path))
        key = q.id.split("/", 1)[1]
        if key not in responses.columns:
            absent.append(key)
            continue
        if not q.is_ordered:
            unordered += 1
            continue
        data.questions[q.id] = q
        columns[q.id] = key
        lookups[q.id] = lookup
    if absent:
        data.notes.append(f"{name}: {len(absent)} question(s) of info.csv have no column in "
                          f"responses.csv and are left out ({', '.join(absent[:3])}"
                          + (" ..." if len(absent) > 3 else "") + ")")
    if unordered:
        data.notes.append(f"{name}: {unordered} question(s) without an order among their "
                          "options (fewer than two distinct ordinal positions) are left out")
    keys = {str(k).strip() for k in info["key"]}
    data._surveys.append(_Survey(name, responses, weight, columns, lookups, keys))


def _weighted_shares(answers: pd.Series, weights: np.ndarray, lookup: dict[str, int],
                     k: int) -> np.ndarray | None:
    """Weighted share of each of ``k`` options among the answers ``lookup`` knows (an
    answer it does not know, such as Refused or an empty cell, counts for none)."""
    counts = np.zeros(k)
    for a, w in zip(answers.to_numpy(), weights, strict=True):
        if not isinstance(a, str):
            continue
        i = lookup.get(a.strip().lower())
        if i is not None:
            counts[i] += w
    total = counts.sum()
    return counts / total if total > 0 else None


# -- reading pre-aggregated items ------------------------------------------------------------
def _question_id(text: str, options: Sequence[str]) -> str:
    raw = json.dumps([text, list(options)], ensure_ascii=False).encode()
    return "q-" + hashlib.sha256(raw).hexdigest()[:10]


def _read_items(path: Path, data: OpinionQAData) -> None:
    try:
        raw = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            items = [json.loads(ln) for ln in raw.splitlines() if ln.strip()]
        else:
            items = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as JSON: {exc}",
                        hint="a JSON list of items, or one item per line (.jsonl)") from exc
    if not isinstance(items, list) or not items:
        raise DataError(f"{path} holds no items", hint="a JSON list of items, or JSONL")
    for n, item in enumerate(items, start=1):
        where = f"{path} item {n}"
        if not isinstance(item, dict):
            raise DataError(f"{where} is not an object", hint=_ITEM_HINT)
        lacking = [k for k in ("question", "options", "group", "distribution") if k not in item]
        if lacking:
            raise DataError(f"{where} has no {', '.join(lacking)}",
                            hint=_ITEM_HINT)
        if not isinstance(item["options"], list) or not item["options"]:
            raise DataError(f"{where}: options is not a list of option texts", hint=_ITEM_HINT)
        options = [str(o).strip() for o in item["options"]]
        dist = item["distribution"]
        if not isinstance(dist, list) or len(dist) != len(options):
            raise DataError(f"{where}: distribution must give one share per option "
                            f"({len(options)})", hint=_ITEM_HINT)
        try:
            shares = np.array([float(x) for x in dist])
        except (TypeError, ValueError):
            raise DataError(f"{where}: distribution holds a value that is not a number",
                            hint=_ITEM_HINT) from None
        if not np.isfinite(shares).all() or (shares < 0).any():
            raise DataError(f"{where}: distribution shares must be finite and >= 0",
                            hint=_ITEM_HINT)
        ords = item.get("ordinal")
        if ords is not None:
            try:
                positions = [float(x) for x in ords]
            except (TypeError, ValueError):
                positions = []
            if not isinstance(ords, list) or len(positions) != len(ords) \
                    or len(ords) > len(options):
                raise DataError(f"{where}: ordinal must list at most one number per option",
                                hint=_ITEM_HINT)
            keep = list(range(len(ords)))
        else:
            keep = [i for i, o in enumerate(options) if o.lower() != "refused"]
            positions = [float(k + 1) for k in range(len(keep))]
        text = " ".join(str(item["question"]).split())
        kept = tuple(options[i] for i in keep)
        qid = str(item.get("id") or _question_id(text, kept))
        q = SurveyQuestion(qid, text, kept, tuple(positions), str(item.get("survey") or ""))
        have = data.questions.get(qid)
        if have is not None and (have.options, have.positions) != (q.options, q.positions):
            raise DataError(f"{where}: question {qid} has other options than in an earlier "
                            "item", hint="give each question the same options in every item, "
                            "or another id")
        data.questions[qid] = q
        part = shares[keep]
        group = str(item["group"]).strip()
        if qid in data._given.get(group, {}):
            raise DataError(f"{where} repeats question {qid} for group {group!r}",
                            hint="give one item per question and group")
        if part.sum() > 0:
            data._given.setdefault(group, {})[qid] = part / part.sum()
    unordered = [qid for qid, q in data.questions.items() if not q.is_ordered]
    for qid in unordered:
        del data.questions[qid]
        for dists in data._given.values():
            dists.pop(qid, None)
    if unordered:
        data.notes.append(f"{len(unordered)} question(s) without an order among their options "
                          "are left out")


def load_opinionqa(path: str | Path) -> OpinionQAData:
    """Read OpinionQA data: the release folder (or one survey folder) or a JSON/JSONL file
    of pre-aggregated items (see the module docstring for both layouts).

    Raises:
        DataError: a missing ``info.csv`` or ``responses.csv``, an unreadable
            ``option_mapping`` or item, no usable question.
    """
    p = Path(path)
    data = OpinionQAData({}, str(p))
    if p.is_file():
        if p.suffix.lower() not in (".json", ".jsonl", ".ndjson"):
            raise DataError(f"OpinionQA data {p} is neither a folder nor a .json/.jsonl file",
                            hint="give the release folder (survey subfolders with info.csv "
                            "and responses.csv) or a JSON/JSONL file of items")
        _read_items(p, data)
    elif p.is_dir():
        if (p / "info.csv").exists() or (p / "responses.csv").exists():
            folders = [p]
        else:
            folders = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
            if not folders:
                raise DataError(f"OpinionQA folder {p} has no survey folders",
                                hint="one subfolder per survey, each with info.csv and "
                                "responses.csv")
        for d in folders:
            _read_survey(d, data)
    else:
        raise DataError(f"OpinionQA data {p} does not exist",
                        hint="give the release folder or a JSON/JSONL file of items")
    if not data.questions:
        raise DataError(f"the OpinionQA data {p} hold no question with ordered options",
                        hint="; ".join(data.notes) or "a question needs at least two "
                        "options with distinct ordinal positions")
    return data


# -- group names ---------------------------------------------------------------------------
_GROUP_START = re.compile(r",\s*(?=[A-Za-z_][A-Za-z0-9_]*=)")


def split_groups(text: str) -> list[str]:
    """``"POLPARTY=Democrat,INCOME=$100,000 or more"`` → the two groups: a comma starts a
    new group only where ``NAME=`` follows it, so labels may hold commas."""
    return [g.strip() for g in _GROUP_START.split(text) if g.strip()]


def group_file_stem(group: str) -> str:
    """The file name (without extension) of a group's profile: every run of characters
    other than letters, digits, ``.``, ``=``, ``-`` and ``_`` becomes one ``_``.

    ``POLPARTY=Democrat`` → ``POLPARTY=Democrat``; ``INCOME=$100,000 or more`` →
    ``INCOME=_100_000_or_more``.
    """
    stem = re.sub(r"[^A-Za-z0-9.=_-]+", "_", group).strip("_.")
    return stem or "group"


def persona_sentence(group: str) -> str:
    """The persona of a group, as the OpinionQA paper steered: "In terms of political
    party, you are Democrat." (a group without ``=`` gives "You are <group>.")."""
    cat, sep, label = group.partition("=")
    if not sep:
        return f"You are {group.strip()}."
    name = CATEGORY_NAMES.get(cat.strip().upper(), cat.strip().lower().replace("_", " "))
    return f"In terms of {name}, you are {label.strip()}."

