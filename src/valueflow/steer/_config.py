"""The steering experiment's configuration: one pydantic model, loaded from YAML.

A config names the models to steer, the values and levels, the prompt regimes, the query
sets, how many samples per prompt, the generation settings and the judge that scores the
answers. CLI flags override fields (:func:`apply_overrides`); the CLI wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from valueflow.errors import ConfigError, UnknownNameError, close_matches
from valueflow.steer._profile_prompt import PriorityBins

__all__ = [
    "REGIMES",
    "GenerationSettings",
    "JudgeSettings",
    "LatinSquareSettings",
    "ModelSettings",
    "PairSettings",
    "ProfileSettings",
    "QuerySettings",
    "SteeringConfig",
    "TargetSection",
    "UserTextSettings",
    "apply_overrides",
    "load_config",
]

#: The prompt regimes a config may ask for (the unsteered default is always run).
REGIMES: tuple[str, ...] = ("intensity", "user_text", "pairs", "latin_square", "profile")

#: Steering levels: -2 strongly opposes a value, 0 is explicitly neutral, +2 strongly values it.
LEVELS: tuple[int, ...] = (-2, -1, 0, 1, 2)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Strict):
    """One model to steer."""

    spec: str
    """Backend spec: ``llamacpp/smollm2``, ``openai/<model>``, ``hf/<path>``, ``vllm/<model>``."""
    name: str | None = None
    """Label used in results and plots (default: the spec)."""
    base_url: str | list[str] | None = None
    """For ``openai/``: the server's base URL(s) (vLLM, Ollama, llama.cpp server ...)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword options for the backend's constructor."""

    @property
    def label(self) -> str:
        return self.name or self.spec


class QuerySettings(_Strict):
    """Which questions the models answer."""

    sets: list[str] = Field(default_factory=lambda: ["default"])
    """Query sets: ``default`` (our bundled set) and/or files (CSV/JSONL/Parquet with a
    ``query`` or ``text`` column, and optional ``id`` and ``category`` columns)."""
    limit: int | None = None
    """Use at most this many queries, picked round-robin across categories (seeded)."""
    categories: list[str] | None = None
    """Keep only queries of these categories."""
    seed: int = 0
    """Seed for picking queries when ``limit`` is set."""

    @field_validator("limit")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("limit must be at least 1")
        return v


class GenerationSettings(_Strict):
    """How each answer is generated."""

    max_tokens: int = Field(default=150, ge=1)
    """Upper bound on generated tokens per answer."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Sampling temperature (0: greedy; then extra samples are identical)."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling mass (``None``: the backend's default)."""
    seed: int | None = 0
    """Base sampling seed; each sample of a prompt gets its own derived seed."""
    word_limit: int | None = Field(default=100, ge=5)
    """Ask for answers of at most this many words (the same for every condition)."""
    instruction_role: Literal["system", "user"] = "system"
    """Where the value instruction goes: a system message, or before the query in the
    user message (for models without a system role)."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight at once (default: the backend's own bound)."""


class UserTextSettings(_Strict):
    """The user-text regime: exemplars from VIDB, presented as the user's own words."""

    n_exemplars: int = Field(default=3, ge=1)
    """Exemplar texts per prompt (per value in multi-value prompts)."""
    vidb: str = "seed"
    """Where exemplars come from: ``seed``, ``workspace`` or a VIDB file."""


class PairSettings(_Strict):
    """Two values steered at once."""

    pairs: list[tuple[str, str]] = Field(default_factory=list)
    """Value pairs, e.g. ``[[benevolence, universalism], [power, universalism]]``."""
    levels: list[tuple[int, int]] = Field(
        default_factory=lambda: [(2, 2), (-2, -2), (2, 1), (1, 2), (2, -2), (-2, 2)])
    """Level combinations; each pair is run at each."""
    style: Literal["instruction", "user_text"] = "instruction"
    """Prompt style: value instructions, or exemplar texts from each value's VIDB bin."""


class LatinSquareSettings(_Strict):
    """The five-value design: each value takes each position of ``levels`` once."""

    values: list[str] = Field(default_factory=list)
    """The values (usually five), e.g. benevolence, universalism, conformity, tradition, security."""
    levels: list[int] = Field(default_factory=lambda: [2, 1, 1, -1, -2])
    """Levels of set 1; set s shifts them cyclically by s, so each value takes each once."""
    style: Literal["instruction", "user_text"] = "instruction"
    """Prompt style, as for pairs."""


class ProfileSettings(_Strict):
    """Steer towards a value profile (e.g. written by ``valueflow profile --out``)."""

    path: str | None = None
    """A table with a value column and an intensity column (one row per value)."""
    group: str | None = None
    """If the table has several groups (a ``group`` column), the one to use."""
    value_column: str = "value"
    """Column with value names."""
    intensity_column: str = "intensity"
    """Column with intensities in [-10, 10] (turned into levels -2..2)."""
    top: int | None = Field(default=5, ge=1)
    """Keep the values with the largest absolute intensity (``None``: all)."""
    style: Literal["instruction", "prompt"] = "instruction"
    """``instruction``: one steering instruction per value at its level -2..2 (as the
    other regimes); ``prompt``: the profile prompt of :func:`valueflow.steer.profile_prompt`
    (the values in five priority bins, grouped by theory) as the system message."""
    bins: PriorityBins = Field(default_factory=PriorityBins)
    """Priority bin edges for ``style: prompt``."""


class TargetSection(_Strict):
    """Steer to target intensities in the same run (the closed loop of ``steer target``)."""

    intensities: dict[str, list[float]] = Field(default_factory=dict)
    """Value → target intensities in [-10, 10], e.g. ``{benevolence: [-3, 0, 3]}``."""
    model: str | None = None
    """The model to steer (default: ``hf/smollm2`` for activation, else the first model)."""
    regime: Literal["activation", "prompt", "persona"] = "activation"
    """``activation`` (hf/ models: a calibrated steering coefficient) or ``prompt``."""
    queries: int = Field(default=3, ge=1)
    """Bundled questions per target."""
    tolerance: float = Field(default=2.0, gt=0)
    """A hit is within this of the target."""
    n: int = Field(default=4, ge=1)
    """Candidates per round."""
    budget: int = Field(default=8, ge=1)
    """Candidates per question at most."""
    layers: str | None = None
    """Decoder layers for activation steering (default: the model's middle band)."""
    coefficients: list[float] | None = None
    """The pilot sweep of activation coefficients (default: 13 from -2 to 2, dense near 0)."""
    side_values: list[str] | None = None
    """Values not targeted on which side effects are measured (default: the config's
    ``values`` that are not targeted)."""

    @field_validator("intensities")
    @classmethod
    def _in_range(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, xs in v.items():
            bad = [x for x in xs if not -10 <= x <= 10]
            if bad:
                raise ValueError(f"target intensities lie in [-10, 10]; {name} has {bad[0]:g}")
            if not xs:
                raise ValueError(f"give {name} at least one target intensity")
        return v


class JudgeSettings(_Strict):
    """How the answers are scored (with the evaluator)."""

    spec: str = "local"
    """``local`` (the offline local scorer), ``sim``, or an LLM judge spec."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword options for the judge (e.g. ``base_url`` for an ``openai/`` judge)."""
    vidb: str = "auto"
    """Anchors for ranking judges: ``auto``, ``seed``, ``workspace`` or a file."""
    k: int | None = None
    """Window size for ranking judges (``None``: the evaluator's default)."""
    m: int | None = None
    """Windows per text for ranking judges (``None``: the evaluator's default)."""
    design: str | None = None
    """Window design for ranking judges (``None``: the evaluator's default)."""
    score_all_values: bool = False
    """Score every answer on every value of the experiment (shows spill-over), not just
    the values its prompt targets. Default answers are always scored on all values."""


class SteeringConfig(_Strict):
    """A steering experiment."""

    name: str = "steer"
    """A short name; part of the run id."""
    models: list[ModelSettings] = Field(
        default_factory=lambda: [ModelSettings(spec="llamacpp/smollm2")])
    """Models to steer (strings are accepted as specs)."""
    values: list[str] = Field(default_factory=list)
    """Values for the single-value regimes (any name :func:`resolve_value` accepts)."""
    levels: list[int] = Field(default_factory=lambda: list(LEVELS))
    """Levels for the single-value regimes, from -2..2."""
    regimes: list[str] = Field(default_factory=lambda: ["intensity"])
    """Prompt regimes: intensity, user_text, pairs, latin_square, profile."""
    queries: QuerySettings = Field(default_factory=lambda: QuerySettings())
    """Query sets."""
    samples: int = Field(default=1, ge=1)
    """Samples per prompt."""
    generation: GenerationSettings = Field(default_factory=lambda: GenerationSettings())
    """Generation settings."""
    user_text: UserTextSettings = Field(default_factory=lambda: UserTextSettings())
    """User-text regime settings."""
    pairs: PairSettings = Field(default_factory=lambda: PairSettings())
    """Pairs regime settings."""
    latin_square: LatinSquareSettings = Field(default_factory=lambda: LatinSquareSettings())
    """Five-value design settings."""
    profile: ProfileSettings = Field(default_factory=lambda: ProfileSettings())
    """Profile regime settings."""
    judge: JudgeSettings = Field(default_factory=lambda: JudgeSettings())
    """Scoring settings."""
    targets: TargetSection | None = None
    """Steer to target intensities too (closed loop), after the prompt regimes."""

    @field_validator("models", mode="before")
    @classmethod
    def _model_strings(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            if not v:
                raise ValueError("name at least one model to steer (e.g. models: "
                                 "[llamacpp/smollm2]), or leave `models` out for the default")
            return [{"spec": m} if isinstance(m, str) else m for m in v]
        return v

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        bad = [lv for lv in v if lv not in LEVELS]
        if bad:
            raise ValueError(f"levels must be among {list(LEVELS)}, got {bad}")
        return sorted(set(v))

    @field_validator("regimes")
    @classmethod
    def _regimes(cls, v: list[str]) -> list[str]:
        for r in v:
            if r not in REGIMES:
                near = close_matches(r, REGIMES)
                raise ValueError(f"unknown regime {r!r}"
                                 + (f" (did you mean {near[0]!r}?)" if near else "")
                                 + f"; regimes are {', '.join(REGIMES)}")
        return list(dict.fromkeys(v))

    # -- checks that need the theory registry --------------------------------------------
    def resolved_values(self) -> list[str]:
        """Canonical ids of :attr:`values` (raises :class:`UnknownNameError` with matches)."""
        return [_resolve(v, "values") for v in self.values]

    def validate_design(self) -> None:
        """Check cross-field consistency and that every value name resolves."""
        needs_values = {"intensity", "user_text"} & set(self.regimes)
        if needs_values and not self.values:
            raise ConfigError(f"regime(s) {', '.join(sorted(needs_values))} need `values`",
                              hint="add e.g. `values: [benevolence, power]` to the config")
        self.resolved_values()
        if "pairs" in self.regimes:
            if not self.pairs.pairs:
                raise ConfigError("regime 'pairs' needs `pairs.pairs`",
                                  hint="e.g. pairs: {pairs: [[benevolence, universalism]]}")
            for a, b in self.pairs.pairs:
                if _resolve(a, "pairs") == _resolve(b, "pairs"):
                    raise ConfigError(f"pair ({a}, {b}) names the same value twice")
            for la, lb in self.pairs.levels:
                if la not in LEVELS or lb not in LEVELS:
                    raise ConfigError(f"pair levels must be among {list(LEVELS)}, got "
                                      f"({la}, {lb})")
        if "latin_square" in self.regimes:
            ls = self.latin_square
            if len(ls.values) < 2:
                raise ConfigError("regime 'latin_square' needs at least two values in "
                                  "`latin_square.values`")
            if len(ls.levels) != len(ls.values):
                raise ConfigError(f"latin_square.levels has {len(ls.levels)} levels for "
                                  f"{len(ls.values)} values; give one level per value")
            ids = [_resolve(v, "latin_square") for v in ls.values]
            if len(set(ids)) != len(ids):
                raise ConfigError("latin_square.values names a value twice")
            bad = [lv for lv in ls.levels if lv not in LEVELS]
            if bad:
                raise ConfigError(f"latin_square levels must be among {list(LEVELS)}, got {bad}")
        if self.targets is not None:
            for name in self.targets.intensities:
                _resolve(name, "targets.intensities")
            if self.targets.budget < self.targets.n:
                raise ConfigError(f"targets.budget ({self.targets.budget}) is less than one "
                                  f"round of targets.n ({self.targets.n})")
        if "profile" in self.regimes and not self.profile.path:
            raise ConfigError("regime 'profile' needs `profile.path`",
                              hint="write one with `valueflow profile TEXTS --out profile.csv`")

    def labels(self) -> list[str]:
        """Model labels; duplicates are an error."""
        labels = [m.label for m in self.models]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ConfigError(f"two models share the label {sorted(dup)[0]!r}",
                              hint="give them distinct `name`s")
        return labels


def _resolve(name: str, where: str) -> str:
    from valueflow.theories import resolve_value

    try:
        return resolve_value(name).id
    except UnknownNameError as exc:
        raise UnknownNameError(f"in `{where}`: {exc.message}", hint=exc.hint) from exc


def _format_validation(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = _field_names(err["loc"][:-1])
            near = close_matches(str(err["loc"][-1]), parent)
            msg = "unknown field" + (f" (did you mean {near[0]!r}?)" if near else "")
        lines.append(f"{loc}: {msg}")
    return ConfigError(f"invalid steering config {source}: " + "; ".join(lines),
                       hint="see `valueflow steer init` for a documented example")


def _field_names(loc: tuple[Any, ...]) -> list[str]:
    model: Any = SteeringConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or ()
        model = next((a for a in (ann, *args) if isinstance(a, type)
                      and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def load_config(source: str | os.PathLike[str] | dict[str, Any]) -> SteeringConfig:
    """A :class:`SteeringConfig` from a YAML file or a dict, validated.

    Raises:
        ConfigError: unreadable file, unknown field, bad level or regime (one line per problem).
        UnknownNameError: a value name that does not resolve (close matches in the hint).
    """
    import yaml

    where = "(dict)"
    if isinstance(source, dict):
        data: Any = source
    else:
        p = Path(source)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"steering config {where} does not exist",
                              hint="write one with `valueflow steer init`")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{where} is not a text file (not UTF-8); a steering config "
                              "is YAML", hint="write one with `valueflow steer init`") from None
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot parse {where} as YAML: {first}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must hold a mapping of settings, got "
                              f"{type(data).__name__}")
        _paths_from_config_folder(data, p.parent)
    try:
        cfg = SteeringConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_validation(exc, where) from None
    cfg.validate_design()
    cfg.labels()
    return cfg


def _paths_from_config_folder(data: dict[str, Any], folder: Path) -> None:
    """Relative file paths in a config name files next to it (profile, query sets, VIDBs),
    so a config travels with its files; a path that is not there is left as written."""

    def rebase(path: Any) -> Any:
        if not isinstance(path, str) or not path or os.path.isabs(path):
            return path
        cand = folder / path
        return str(cand) if cand.exists() else path

    prof = data.get("profile")
    if isinstance(prof, dict) and prof.get("path"):
        prof["path"] = rebase(prof["path"])
    queries = data.get("queries")
    if isinstance(queries, dict) and isinstance(queries.get("sets"), list):
        queries["sets"] = [s if s == "default" else rebase(s) for s in queries["sets"]]
    for section in ("user_text", "judge"):
        sub = data.get(section)
        if isinstance(sub, dict) and sub.get("vidb") not in (None, "auto", "seed",
                                                              "workspace"):
            sub["vidb"] = rebase(sub["vidb"])


def apply_overrides(cfg: SteeringConfig, *, models: list[str] | None = None,
                    base_url: str | None = None, judge: str | None = None,
                    queries: int | None = None, samples: int | None = None,
                    max_tokens: int | None = None) -> SteeringConfig:
    """A copy of ``cfg`` with CLI flags applied (flags win over the file).

    ``base_url`` applies to every ``openai/`` model, so one config runs unchanged against
    any OpenAI-compatible server: ``--model openai/<name> --base-url http://host:8000/v1``.
    """
    data = cfg.model_dump()
    if models:
        data["models"] = [{"spec": m} for m in models]
    if base_url:
        for m in data["models"]:
            if m["spec"].startswith("openai/"):
                m["base_url"] = base_url
    if judge:
        data["judge"]["spec"] = judge
    if queries is not None:
        data["queries"]["limit"] = queries
    if samples is not None:
        data["samples"] = samples
    if max_tokens is not None:
        data["generation"]["max_tokens"] = max_tokens
    return load_config(data)
