"""Steer to a target intensity: calibrate a steering setting, invert, close the loop.

1. **Calibration** (:func:`calibrate`): a pilot sweep over settings — activation
   coefficients for ``hf/`` models, prompt levels -2..2 for any backend — on pilot
   questions, scored by the judge, fitted as a monotone dose–response curve with a
   bootstrap band (:mod:`valueflow.steer._calibrate`). For activation steering the
   *calibrated range* stops where answers stop being fluent: the median perplexity of the
   answers under the unsteered model may be at most ``fluency_ratio`` times the unsteered
   answers' median. Stored per model × value × regime × judge in the workspace.
2. **Closed loop** (:func:`steer_to_target`): per question, candidates are generated at the
   setting the curve gives for the target and scored; when none lands within the
   tolerance, the setting is moved by the question's own offset from the curve (what the
   last round measured minus what the curve predicted) and new candidates are drawn, until
   one hits or the budget is spent. Every candidate is kept with its measured intensity
   and interval; the closest one is the answer.

Everything is stored as it is made (answers, scores, perplexities, candidates), and the
decisions depend only on stored results, so an interrupted run repeats exactly the same
choices when run again and generates only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from valueflow.errors import ConfigError
from valueflow.steer._calibrate import DoseResponse, fit_dose_response
from valueflow.steer._config import LEVELS, JudgeSettings
from valueflow.steer._design import Query, default_queries
from valueflow.steer._prompts import build_messages
from valueflow.steer._store import SteerStore

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from valueflow.llm import Backend, ChatRequest
    from valueflow.steer._activation import SteeringVector
    from valueflow.workspace import Workspace

__all__ = [
    "Calibration",
    "QueryOutcome",
    "TargetResult",
    "TargetSettings",
    "calibrate",
    "load_target_result",
    "load_target_run",
    "merge_results",
    "parse_targets",
    "steer_to_target",
    "target_runs",
]

TARGET_RUN_KIND = "steer-target"
DEFAULT_COEFFICIENTS: tuple[float, ...] = (-2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25,
                                           0.5, 0.75, 1.0, 1.5, 2.0)
"""The pilot sweep of activation coefficients (in mean differences per layer). Dense near 0,
where answers stay fluent: on SmolLM2-135M the fluent range was about -0.75..1.25."""


class TargetSettings(BaseModel):
    """How ``steer target`` calibrates and searches."""

    model_config = ConfigDict(extra="forbid")

    regime: Literal["activation", "prompt", "persona"] = "activation"
    """``activation`` (hf/ models), ``prompt`` (level instructions -2..2; any backend) or
    ``persona`` (persona prompts -2..2: the model plays someone who holds the value to that
    degree; any backend)."""
    tolerance: float = Field(default=1.5, gt=0)
    """A candidate hits when every measured intensity is within this of its target."""
    n: int = Field(default=4, ge=1)
    """Candidates generated per round."""
    budget: int = Field(default=8, ge=1)
    """Candidates per question at most."""
    layers: str | None = None
    """Decoder layers for activation steering (``10-15``; default: the model's middle band)."""
    source: Literal["auto", "prompts", "texts", "both"] = "auto"
    """What the steering vectors are made from."""
    method: Literal["mean_diff", "pca"] = "mean_diff"
    """How the steering vectors are made."""
    coefficients: list[float] = Field(default_factory=lambda: list(DEFAULT_COEFFICIENTS))
    """Activation coefficients of the pilot sweep (0 is always added)."""
    pilot_queries: int = Field(default=6, ge=2)
    """Pilot questions per setting (from the bundled set, never the ones being steered)."""
    pilot_samples: int = Field(default=1, ge=1)
    """Samples per pilot question and setting."""
    max_tokens: int = Field(default=80, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    word_limit: int | None = Field(default=60, ge=5)
    fluency_ratio: float = Field(default=3.0, gt=1)
    """Activation settings whose answers' median perplexity exceeds this multiple of the
    unsteered median are outside the calibrated range."""
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    """Which judge measures the answers."""
    side_values: list[str] = Field(default_factory=list)
    """Values not targeted on which side effects are measured: each question's chosen
    answer and its unsteered answer are scored on them (mean absolute shift)."""

    def generation(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "word_limit": self.word_limit}


def parse_targets(items: Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """``["benevolence=+4", "power=-2"]`` (or a mapping) → value id → intensity; each in
    [-10, 10], each value once."""
    from valueflow.theories import resolve_value

    pairs: list[tuple[str, Any]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            name, sep, num = str(item).partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"cannot read the target {item!r}",
                                  hint="write VALUE=INTENSITY, e.g. benevolence=+4")
            pairs.append((name.strip(), num.strip()))
    out: dict[str, float] = {}
    for name, raw in pairs:
        try:
            x = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"the target intensity of {name} is {raw!r}, not a number",
                              hint="intensities are numbers in [-10, 10], e.g. benevolence=+4"
                              ) from None
        if not -10 <= x <= 10 or not math.isfinite(x):
            raise ConfigError(f"the target intensity of {name} is {x:g}; intensities lie in "
                              "[-10, 10]")
        vid = resolve_value(name).id
        if vid in out:
            raise ConfigError(f"{vid} has two targets", hint="give each value one target")
        out[vid] = x
    if not out:
        raise ConfigError("no target given", hint="e.g. --value benevolence --intensity 4, "
                          "or --target benevolence=4 --target power=-2")
    return out


# -- calibration --------------------------------------------------------------------------
@dataclass
class Calibration:
    """A dose–response curve of one value for one model, regime and judge."""

    value: str
    model: str
    regime: str
    judge: str
    curve: DoseResponse
    vector: SteeringVector | None = None
    points: dict[str, Any] = field(default_factory=dict)
    """Per pilot answer: setting, intensity, perplexity."""
    calibrated_range: tuple[float, float] = (-math.inf, math.inf)
    """The settings whose answers stay fluent (activation) or the levels (prompt)."""

    def setting_for(self, target: float) -> float:
        """The setting expected to reach ``target`` (clipped to the calibrated range)."""
        if self.regime != "activation":
            return self.curve.nearest_setting(target)
        lo, hi = self.calibrated_range
        return float(np.clip(self.curve.invert(target), lo, hi))

    def check_setting(self, setting: float) -> None:
        lo, hi = self.calibrated_range
        if not lo - 1e-9 <= setting <= hi + 1e-9:
            raise ConfigError(
                f"coefficient {setting:g} for {self.value} is outside the calibrated range "
                f"[{lo:g}, {hi:g}] of {self.model} (beyond it answers stop being fluent or "
                "were never measured)", hint="pick a coefficient in the range, or widen the "
                "pilot sweep with --coefficients")

    def summary(self) -> dict[str, Any]:
        lo, hi = self.curve.range
        return {"value": self.value, "model": self.model, "regime": self.regime,
                "judge": self.judge, "spearman": round(self.curve.spearman, 3),
                "reachable": [round(lo, 2), round(hi, 2)],
                "calibrated_range": list(self.calibrated_range),
                "settings": self.curve.settings.tolist(),
                "mean_intensity": [round(x, 2) for x in self.curve.raw_mean],
                "fitted": [round(x, 2) for x in self.curve.fitted]}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def pilot_queries(n: int) -> list[Query]:
    """Pilot questions: every 9th bundled query from the 4th on, so they differ from the
    questions :func:`target_queries` picks."""
    qs = default_queries()
    return qs[3::9][:n]


def target_queries(n: int) -> list[Query]:
    """The bundled questions ``steer target`` uses when none are given (none are pilots)."""
    pilots = {q.id for q in pilot_queries(len(default_queries()))}
    return [q for q in default_queries()[::7] if q.id not in pilots][:n]


def _user_queries(texts: Sequence[str]) -> list[Query]:
    return [Query(f"user/{hashlib.sha256(t.encode()).hexdigest()[:10]}", t, "", "user")
            for t in texts]


class _Engine:
    """Shared machinery: one backend, one judge, one workspace."""

    def __init__(self, backend: Backend, label: str, workspace: Workspace, judge: Any,
                 judge_name: str, settings: TargetSettings, progress: bool,
                 say: Callable[[str], None]) -> None:
        self.backend, self.label, self.ws = backend, label, workspace
        self.judge, self.judge_name, self.cfg = judge, judge_name, settings
        self.progress, self.say = progress, say
        self.store = SteerStore(workspace)
        self.is_hf = hasattr(type(backend), "hf_model")

    def request(self, messages: list[dict[str, str]], sample: int,
                steer: Sequence[tuple[SteeringVector, float]] = ()) -> ChatRequest:
        from valueflow.llm import ChatRequest

        extra = None
        live = [(v, round(float(c), 4)) for v, c in steer if round(float(c), 4) != 0]
        if live:
            extra = {"steering": [[self.backend.add_vector(v), c]  # type: ignore[attr-defined]
                                  for v, c in live]}
        return ChatRequest(messages=messages, max_tokens=self.cfg.max_tokens,
                           temperature=self.cfg.temperature, sample_index=sample, extra=extra)

    def generate(self, items: list[dict[str, Any]], run_id: str) -> list[str | None]:
        """Generate (or reuse) the answers of ``items`` (each with ``request`` and the row
        fields); returns each item's gen_key, ``None`` where generation failed."""
        from valueflow.llm import LLMClient, run_sync
        from valueflow.steer._refusal import is_refusal
        from valueflow.steer._runner import _gen_key

        keys = [_gen_key(self.label, self.backend, it["request"]) for it in items]
        have = self.store.existing_generations(keys)
        self.store.link(have, run_id)
        todo = [i for i, k in enumerate(keys) if k not in have]
        out: list[str | None] = [k if k in have else None for k in keys]
        if not todo:
            return out
        with LLMClient(self.backend, self.ws, run_id=run_id) as client:
            results = run_sync(client.generate([items[i]["request"] for i in todo],
                                               progress=self.progress))
        rows = []
        errors = []
        for i, res in zip(todo, results, strict=True):
            if not res.ok:
                errors.append(str(res.error))
                continue
            it = items[i]
            rows.append({"gen_key": keys[i], "model": self.label, "regime": it["regime"],
                         "condition": it["condition"], "style": it["style"],
                         "targets": json.dumps(it["targets"], sort_keys=True),
                         "query_id": it["query"].id, "query_set": it["query"].source,
                         "category": it["query"].category, "query": it["query"].text,
                         "sample": it["request"].sample_index,
                         "messages": json.dumps(list(it["request"].messages)),
                         "response": res.text, "refusal": bool(is_refusal(res.text)),
                         "finish_reason": res.finish_reason})
            out[i] = keys[i]
        self.store.add_generations(rows, run_id)
        if errors:
            self.say(f"{len(errors)} generations failed (they are retried on the next run); "
                     f"last error: {errors[-1]}")
        return out

    def score(self, keys: Sequence[str], values: Sequence[str]) -> dict[tuple[str, str],
                                                                         tuple[float, float,
                                                                               float]]:
        """(gen_key, value) → (intensity, low, high), scoring what is not stored yet."""
        from valueflow.steer._runner import _score_texts
        from valueflow.theories import resolve_value

        keys = list(dict.fromkeys(keys))
        texts = self.store.responses(keys)
        have = self.store.scores_for(keys, self.judge_name)
        got: dict[tuple[str, str], tuple[float, float, float]] = {
            (str(r.gen_key), str(r.value)): (float(r.intensity), float(r.low),  # type: ignore[arg-type]
                                             float(r.high))  # type: ignore[arg-type]
            for r in have.itertuples()}
        for v in values:
            need = [k for k in keys if (k, v) not in got and str(texts.get(k, "")).strip()]
            if not need:
                continue
            scores, _ = _score_texts([texts[k] for k in need], resolve_value(v), self.judge,
                                     self.cfg.judge, self.ws, False)
            fine = [(k, sc) for k, sc in zip(need, scores, strict=True) if math.isfinite(sc[0])]
            self.store.add_scores([(k, v, self.judge_name, *sc) for k, sc in fine])
            for k, sc in fine:
                got[(k, v)] = (sc[0], sc[1], sc[2])
        return got

    def perplexity(self, keys: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
        """Perplexity of each answer under the unsteered model, given the plain question
        (hf/ backends only; empty otherwise)."""
        if not self.is_hf:
            return {}
        from valueflow.steer._activation import response_perplexity

        have = self.store.perplexities(keys)
        need = [(k, it) for k, it in zip(keys, items, strict=True) if k and k not in have]
        if need:
            texts = self.store.responses([k for k, _ in need])
            plain = [build_messages(it["query"].text, word_limit=self.cfg.word_limit)
                     for _, it in need]
            ppl = response_perplexity(self.backend, plain, [texts[k] for k, _ in need])
            new = {k: p for (k, _), p in zip(need, ppl, strict=True) if math.isfinite(p)}
            self.store.add_perplexities(new)
            have.update(new)
        return have


def calibrate(engine: _Engine, value: str, vector: SteeringVector | None, run_id: str,
              fixed: bool = False) -> Calibration:
    """The stored calibration of ``value``, or a new pilot sweep (resumable)."""
    cfg = engine.cfg
    regime = cfg.regime
    from valueflow.theories import resolve_value

    node = resolve_value(value)
    settings = (sorted({0.0, *map(float, cfg.coefficients)}) if regime == "activation"
                else [float(x) for x in LEVELS])
    queries = pilot_queries(cfg.pilot_queries)
    key_spec = {"model": engine.label, "identity": engine.backend.cache_identity(),
                "value": node.id, "regime": regime, "judge": engine.judge_name,
                "vector": vector.digest if vector is not None else None,
                "settings": settings, "queries": [q.id for q in queries],
                "samples": cfg.pilot_samples, "generation": cfg.generation(),
                "fluency_ratio": cfg.fluency_ratio if regime == "activation" else None}
    cal_key = _digest(key_spec)
    stored = engine.store.calibration(cal_key)
    if stored is not None:
        curve_d, points_d = stored
        lo_s, hi_s = points_d["calibrated_range"]
        return Calibration(node.id, engine.label, regime, engine.judge_name,
                           DoseResponse.from_dict(curve_d), vector, points_d,
                           (float(lo_s), float(hi_s)))
    engine.say(f"calibrating {node.id} on {engine.label} ({regime}): {len(settings)} settings "
               f"x {len(queries)} pilot questions x {cfg.pilot_samples} samples")
    items: list[dict[str, Any]] = []
    for s in settings:
        for q in queries:
            for sample in range(cfg.pilot_samples):
                if regime == "activation":
                    msgs = build_messages(q.text, word_limit=cfg.word_limit)
                    req = engine.request(msgs, sample,
                                         [(vector, s)] if vector is not None else ())
                    cond = f"act:{node.id}={s:+g}"
                else:
                    msgs = _prompt_messages(q.text, [(node, int(s))], regime, cfg.word_limit)
                    req = engine.request(msgs, sample)
                    cond = f"{regime}:{node.id}={int(s):+d}"
                items.append({"request": req, "query": q, "regime": "calibration",
                              "condition": cond, "style": regime,
                              "targets": {node.id: s}, "setting": s})
    keys = engine.generate(items, run_id)
    ok = [(k, it) for k, it in zip(keys, items, strict=True) if k]
    scores = engine.score([k for k, _ in ok], [node.id])
    ppl = engine.perplexity([k for k, _ in ok], [it for _, it in ok])
    xs: list[float] = []
    ys: list[float] = []
    pp: list[float] = []
    for k, it in ok:
        sc = scores.get((k, node.id))
        if sc is None:
            continue
        xs.append(float(it["setting"]))
        ys.append(sc[0])
        pp.append(ppl.get(k, float("nan")))
    if len(set(xs)) < 2:
        raise ConfigError(f"the pilot sweep for {node.id} produced scored answers at fewer "
                          "than two settings", hint="check the model and judge (see the "
                          "errors above) and run again; finished answers are kept")
    rng: tuple[float, float] = (min(settings), max(settings))
    if regime == "activation" and engine.is_hf:
        rng = _fluent_range(np.array(xs), np.array(pp), cfg.fluency_ratio)
    keep = [(x, y) for x, y in zip(xs, ys, strict=True) if rng[0] <= x <= rng[1]]
    curve = fit_dose_response([x for x, _ in keep], [y for _, y in keep])
    points = {"setting": xs, "intensity": ys, "perplexity": pp,
              "calibrated_range": list(rng)}
    engine.store.add_calibration(cal_key, model=engine.label, value=node.id, regime=regime,
                                 judge=engine.judge_name,
                                 vector=vector.digest if vector is not None else None,
                                 curve=curve.as_dict(), points=points)
    return Calibration(node.id, engine.label, regime, engine.judge_name, curve, vector, points,
                       rng)


def _prompt_messages(query: str, targets: list[tuple[Any, int]], regime: str,
                     word_limit: int | None) -> list[dict[str, str]]:
    """Messages of the prompt regimes: level instructions, or one persona of all targets."""
    if regime == "persona":
        from valueflow.steer._prompts import persona_text

        return build_messages(query, word_limit=word_limit, instruction=persona_text(targets))
    return build_messages(query, targets=targets, word_limit=word_limit)


def _vector_folder(workspace: Workspace) -> Path | None:
    """Where a workspace keeps its steering vectors (None for an in-memory workspace)."""
    from pathlib import Path

    if str(workspace.path) == ":memory:":
        return None
    return Path(str(workspace.path)).parent / "vectors"


def stored_calibrations(workspace: Workspace, model: str, *, judge: str = "local",
                        regime: str = "activation") -> dict[str, Calibration]:
    """The newest stored calibration of each value for ``model`` (its label, e.g.
    ``hf/smollm2``), ``judge`` and ``regime``, with its steering vector where the vector's
    file is still in the workspace's ``vectors`` folder (activation calibrations without
    one are left out). Made by ``steer target`` / ``steer run`` with targets."""
    from valueflow.steer._activation import SteeringVector

    rows = SteerStore(workspace).calibrations()
    if rows.empty:
        return {}
    rows = rows[(rows["model"] == model) & (rows["judge"] == judge) & (rows["regime"] == regime)]
    folder = _vector_folder(workspace)
    vectors: dict[str, SteeringVector] = {}
    if regime == "activation" and folder is not None and folder.is_dir():
        for f in folder.glob("*.safetensors"):
            try:
                made = SteeringVector.load(f)
            except ConfigError:
                continue
            vectors[made.digest] = made
    out: dict[str, Calibration] = {}
    for r in rows.sort_values("created_at").to_dict("records"):
        vec = None
        if regime == "activation":
            if r["vector"] not in vectors:
                continue
            vec = vectors[r["vector"]]
        points = json.loads(r["points"]) if isinstance(r["points"], str) else r["points"]
        curve = json.loads(r["curve"]) if isinstance(r["curve"], str) else r["curve"]
        lo, hi = points["calibrated_range"]
        out[str(r["value"])] = Calibration(str(r["value"]), model, regime, judge,
                                           DoseResponse.from_dict(curve), vec, points,
                                           (float(lo), float(hi)))
    return out


def _fluent_range(x: np.ndarray, ppl: np.ndarray, ratio: float) -> tuple[float, float]:
    """The widest run of settings around 0 whose median perplexity stays within ``ratio``
    times the unsteered median."""
    settings = np.unique(x)
    med = {s: float(np.nanmedian(ppl[x == s])) if np.isfinite(ppl[x == s]).any() else np.nan
           for s in settings}
    base = med.get(0.0, np.nan)
    if not np.isfinite(base):
        return float(settings.min()), float(settings.max())
    lo = hi = 0.0
    for s in sorted(s for s in settings if s > 0):
        if not np.isfinite(med[s]) or med[s] > ratio * base:
            break
        hi = float(s)
    for s in sorted((s for s in settings if s < 0), reverse=True):
        if not np.isfinite(med[s]) or med[s] > ratio * base:
            break
        lo = float(s)
    return lo, hi


# -- closed loop --------------------------------------------------------------------------
@dataclass
class QueryOutcome:
    """What the closed loop reached for one question."""

    query_id: str
    query: str
    targets: dict[str, float]
    response: str
    measured: dict[str, tuple[float, float, float]]
    """value → (intensity, low, high) of the chosen answer."""
    settings: dict[str, float]
    hit: bool
    n_candidates: int
    gen_key: str | None = None
    perplexity: float | None = None
    refusal: bool = False
    """Whether the chosen answer reads as a refusal."""
    side_effects: dict[str, float] = field(default_factory=dict)
    """value not targeted → the chosen answer's intensity minus the unsteered answer's."""
    first_round_hits: float | None = None
    """The share of the first round's candidates (all at the calibrated setting) within
    the tolerance: how often one answer hits without any selection. The chosen answer's
    own measurement is selected among candidates, so it is biased toward the target
    when the judge is noisy; this share is not."""

    @property
    def error(self) -> dict[str, float]:
        return {v: self.measured[v][0] - t for v, t in self.targets.items() if v in self.measured}


@dataclass
class TargetResult:
    """The outcome of ``steer target``: one :class:`QueryOutcome` per question."""

    run_id: str
    regime: str
    judge: str
    tolerance: float
    outcomes: list[QueryOutcome]
    calibrations: dict[str, Calibration]
    candidates: pd.DataFrame | None = None

    @property
    def hit_rate(self) -> float:
        return float(np.mean([o.hit for o in self.outcomes])) if self.outcomes else float("nan")

    def side_effects(self) -> dict[str, float]:
        """value not targeted → mean absolute shift of the chosen answers from the unsteered
        answers of the same questions (empty unless ``side_values`` were given)."""
        vals: dict[str, list[float]] = {}
        for o in self.outcomes:
            for v, d in o.side_effects.items():
                vals.setdefault(v, []).append(abs(d))
        return {v: round(float(np.mean(xs)), 3) for v, xs in vals.items()}

    @property
    def first_round_hit_rate(self) -> float:
        """Mean over questions of :attr:`QueryOutcome.first_round_hits` (no selection)."""
        xs = [o.first_round_hits for o in self.outcomes if o.first_round_hits is not None]
        return float(np.mean(xs)) if xs else float("nan")

    @property
    def rmse(self) -> float:
        errs = [e for o in self.outcomes for e in o.error.values()]
        return float(np.sqrt(np.mean(np.square(errs)))) if errs else float("nan")

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for o in self.outcomes:
            for v, t in o.targets.items():
                m = o.measured.get(v, (math.nan, math.nan, math.nan))
                rows.append({"query_id": o.query_id, "query": o.query, "value": v,
                             "target": t, "intensity": m[0], "low": m[1], "high": m[2],
                             "error": m[0] - t, "setting": o.settings.get(v), "hit": o.hit,
                             "n_candidates": o.n_candidates, "perplexity": o.perplexity,
                             "refusal": o.refusal,
                             "side_effect_mean_abs": float(np.mean(np.abs(list(
                                 o.side_effects.values())))) if o.side_effects else None,
                             "response": o.response})
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "regime": self.regime, "judge": self.judge,
                "tolerance": self.tolerance, "questions": len(self.outcomes),
                "hit_rate": round(self.hit_rate, 3), "rmse": round(self.rmse, 3),
                "mean_candidates": round(float(np.mean([o.n_candidates for o in self.outcomes])),
                                         2) if self.outcomes else 0,
                "first_round_hit_rate": round(self.first_round_hit_rate, 3),
                "refusal_rate": round(float(np.mean([o.refusal for o in self.outcomes])), 3)
                if self.outcomes else 0.0,
                "side_effects": self.side_effects(),
                "calibration": {v: c.summary() for v, c in self.calibrations.items()}}


def steer_to_target(
    model: str | Backend,
    targets: Mapping[str, float] | Sequence[str],
    workspace: Workspace,
    *,
    queries: Sequence[str] | int = 4,
    settings: TargetSettings | Mapping[str, Any] | None = None,
    vectors: Mapping[str, SteeringVector] | None = None,
    coefficients: Mapping[str, float] | None = None,
    judge: Any = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    parent: str | None = None,
) -> TargetResult:
    """Make ``model`` answer ``queries`` expressing each target value at its intensity.

    Args:
        model: A backend spec (``hf/smollm2``, ``openai/<m>`` ...) or a backend.
        targets: value → intensity in [-10, 10] (or ``["benevolence=4", ...]``).
        workspace: Where answers, scores, curves and candidates are stored.
        queries: Questions, or how many bundled ones to use.
        settings: :class:`TargetSettings` (or a dict of its fields).
        vectors: Steering vectors to use instead of making them (activation regime).
        coefficients: Fixed activation coefficients per value (no search; checked against
            the calibrated range before anything is generated).
        judge: A judge object instead of ``settings.judge``.
        parent: The steering run this one belongs to (``steer run`` with ``targets``).

    Returns:
        A :class:`TargetResult`; the run is recorded in the workspace (kind
        ``steer-target``) and :func:`load_target_run` reads it back.
    """
    from valueflow.llm import get_backend

    say = echo or (lambda _m: None)
    try:
        cfg = (settings if isinstance(settings, TargetSettings)
               else TargetSettings.model_validate(dict(settings or {})))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"invalid target settings: {'.'.join(map(str, err['loc']))}: "
                          f"{err['msg']}") from None
    if cfg.budget < cfg.n:
        raise ConfigError(f"a budget of {cfg.budget} candidates is less than one round of "
                          f"{cfg.n}", hint="raise --budget or lower --n")
    goal = parse_targets(targets)
    backend = get_backend(model) if isinstance(model, str) else model
    label = backend.spec
    if cfg.regime == "activation":
        from valueflow.steer._activation import hf_parts

        hf_parts(backend)  # a clear error for servers before anything runs
    qs = target_queries(queries) if isinstance(queries, int) else _user_queries(list(queries))
    if not qs:
        raise ConfigError("no questions to answer", hint="pass --query TEXT or --queries N")
    own_judge = judge is None
    if own_judge:
        from valueflow.judges import judge_from_options

        judge = judge_from_options(cfg.judge.spec, cfg.judge.options, workspace=workspace)
    from valueflow.steer._runner import judge_key

    judge_name = judge_key(judge, cfg.judge.spec)
    engine = _Engine(backend, label, workspace, judge, judge_name, cfg, progress, say)
    spec = {"model": label, "identity": backend.cache_identity(), "targets": goal,
            "queries": [q.id for q in qs], "settings": cfg.model_dump(mode="json"),
            "judge": judge_name, "coefficients": dict(coefficients or {})}
    if parent:
        spec["parent"] = parent
    run_id = f"{TARGET_RUN_KIND}-{_digest(spec)[:10]}"
    workspace.start_run(TARGET_RUN_KIND, spec, run_id=run_id)
    status = "failed"
    try:
        vecs: dict[str, SteeringVector] = {}
        if cfg.regime == "activation":
            vecs = _vectors(backend, list(goal), cfg, vectors, workspace, say)
        cals = {v: calibrate(engine, v, vecs.get(v), run_id) for v in goal}
        for v, cal in cals.items():
            lo, hi = cal.curve.range
            say(f"{v}: {cal.regime} curve reaches {lo:+.1f}..{hi:+.1f} (Spearman "
                f"{cal.curve.spearman:+.2f}) over settings {cal.calibrated_range[0]:g}.."
                f"{cal.calibrated_range[1]:g}")
            if not cal.curve.reachable(goal[v], cfg.tolerance):
                say(f"note: the target {goal[v]:+g} for {v} is beyond what the calibration "
                    f"reached ({lo:+.1f}..{hi:+.1f}); the loop will try the nearest setting")
        fixed = {}
        if coefficients:
            from valueflow.theories import resolve_value

            for name, coef in coefficients.items():
                vid = resolve_value(name).id
                if vid not in cals:
                    raise ConfigError(f"a coefficient is given for {vid}, which has no target")
                cals[vid].check_setting(float(coef))
                fixed[vid] = float(coef)
        outcomes = _closed_loop(engine, qs, goal, cals, fixed, run_id)
        if cfg.side_values:
            _side_effects(engine, outcomes, qs, [v for v in _ids(cfg.side_values)
                                                 if v not in goal], run_id)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        workspace.finish_run(run_id, status)
        client = getattr(judge, "client", None) if own_judge else None
        if client is not None:
            client.close()
    return TargetResult(run_id, cfg.regime, judge_name, cfg.tolerance, outcomes, cals,
                        engine.store.candidates(run_id))


def _vectors(backend: Any, values: list[str], cfg: TargetSettings,
             given: Mapping[str, SteeringVector] | None, workspace: Workspace,
             say: Callable[[str], None]) -> dict[str, SteeringVector]:
    """The steering vector of each value: given, stored in the workspace, or made now."""
    from valueflow.steer._activation import SteeringVector, model_identity, train_steering_vector
    from valueflow.theories import resolve_value

    out: dict[str, SteeringVector] = {}
    for v, vec in (given or {}).items():
        out[resolve_value(v).id] = vec
    folder = _vector_folder(workspace)
    for v in values:
        if v in out:
            continue
        key = _digest({"model": model_identity(backend), "value": v, "layers": cfg.layers,
                       "source": cfg.source, "method": cfg.method, "version": 2})[:16]
        path = None if folder is None else folder / f"{v.replace(':', '_')}-{key}.safetensors"
        if path is not None and path.is_file():
            out[v] = SteeringVector.load(path)
            continue
        say(f"making the {v} steering vector ({cfg.source}, {cfg.method})")
        out[v] = train_steering_vector(backend, v, layers=cfg.layers, source=cfg.source,
                                       method=cfg.method)
        if path is not None:
            out[v].save(path)
    return out


def _closed_loop(engine: _Engine, qs: list[Query], goal: dict[str, float],
                 cals: dict[str, Calibration], fixed: dict[str, float], run_id: str
                 ) -> list[QueryOutcome]:
    from valueflow.theories import resolve_value

    cfg = engine.cfg
    values = list(goal)
    nodes = {v: resolve_value(v) for v in values}
    state: dict[str, dict[str, Any]] = {
        q.id: {"query": q, "cands": [], "setting": {v: fixed.get(v, cals[v].setting_for(goal[v]))
                                                    for v in values},
               "done": False} for q in qs}
    rnd = 0
    while True:
        active = [s for s in state.values()
                  if not s["done"] and len(s["cands"]) < cfg.budget]
        if not active:
            break
        items: list[dict[str, Any]] = []
        for st in active:
            k = min(cfg.n, cfg.budget - len(st["cands"]))
            q, sett = st["query"], st["setting"]
            for j in range(k):
                idx = len(st["cands"]) + j
                if cfg.regime == "activation":
                    msgs = build_messages(q.text, word_limit=cfg.word_limit)
                    steer = [(vec, sett[v]) for v in values
                             if (vec := cals[v].vector) is not None]
                    req = engine.request(msgs, idx, steer)
                    cond = "act:" + ",".join(f"{v}={sett[v]:+.3f}" for v in values)
                else:
                    msgs = _prompt_messages(q.text, [(nodes[v], int(sett[v])) for v in values],
                                            cfg.regime, cfg.word_limit)
                    req = engine.request(msgs, idx)
                    cond = f"{cfg.regime}:" + ",".join(f"{v}={int(sett[v]):+d}" for v in values)
                items.append({"request": req, "query": q, "regime": "target",
                              "condition": cond, "style": cfg.regime, "targets": goal,
                              "state": st, "index": idx, "round": rnd,
                              "setting": dict(sett)})
        engine.say(f"round {rnd + 1}: {len(items)} candidates for {len(active)} questions")
        keys = engine.generate(items, run_id)
        ok = [(k, it) for k, it in zip(keys, items, strict=True) if k]
        scores = engine.score([k for k, _ in ok], values)
        ppl = engine.perplexity([k for k, _ in ok], [it for _, it in ok])
        engine.store.add_candidates([(run_id, it["query"].id, it["index"], it["round"], k,
                                      json.dumps(it["setting"])) for k, it in ok])
        made: dict[str, int] = {}
        for key, it in ok:
            meas = {v: scores[(key, v)] for v in values if (key, v) in scores}
            it["state"]["cands"].append({"key": key, "measured": meas,
                                         "setting": it["setting"], "ppl": ppl.get(key),
                                         "round": it["round"]})
            made[it["query"].id] = made.get(it["query"].id, 0) + 1
        for st in active:
            if not made.get(st["query"].id):
                st["done"] = True  # nothing could be generated: stop instead of spinning
                continue
            last = [c for c in st["cands"] if c["setting"] == st["setting"]]
            if any(_hit(c, goal, cfg.tolerance) for c in st["cands"]):
                st["done"] = True
                continue
            if fixed or not last:
                continue
            new = {}
            for v in values:
                got = [c["measured"][v][0] for c in last if v in c["measured"]]
                if not got:
                    new[v] = st["setting"][v]
                    continue
                offset = float(np.mean(got)) - float(cals[v].curve.predict(st["setting"][v]))
                new[v] = cals[v].setting_for(goal[v] - offset)
            st["setting"] = new
        rnd += 1
    outcomes = [_outcome(st, goal, cfg.tolerance) for st in state.values()]
    from valueflow.steer._refusal import is_refusal

    texts = engine.store.responses([o.gen_key for o in outcomes if o.gen_key])
    for o in outcomes:
        o.response = texts.get(o.gen_key or "", "")
        o.refusal = bool(o.gen_key) and bool(is_refusal(o.response))
    return outcomes


def _ids(names: Sequence[str]) -> list[str]:
    from valueflow.theories import resolve_value

    return list(dict.fromkeys(resolve_value(n).id for n in names))


def _side_effects(engine: _Engine, outcomes: list[QueryOutcome], qs: list[Query],
                  side: list[str], run_id: str) -> None:
    """Score each chosen answer and an unsteered answer of its question on ``side``; the
    difference is the side effect of steering on that value."""
    if not side:
        return
    cfg = engine.cfg
    items = [{"request": engine.request(build_messages(q.text, word_limit=cfg.word_limit), 0),
              "query": q, "regime": "target-baseline", "condition": "default",
              "style": "default", "targets": {}} for q in qs]
    base_keys = engine.generate(items, run_id)
    chosen = [o.gen_key for o in outcomes if o.gen_key]
    scores = engine.score([k for k in base_keys if k] + chosen, side)
    base = dict(zip([q.id for q in qs], base_keys, strict=True))
    for o in outcomes:
        b = base.get(o.query_id)
        if not o.gen_key or not b:
            continue
        o.side_effects = {v: scores[(o.gen_key, v)][0] - scores[(b, v)][0] for v in side
                          if (o.gen_key, v) in scores and (b, v) in scores}


def _hit(cand: dict[str, Any], goal: dict[str, float], tol: float) -> bool:
    return all(v in cand["measured"] and abs(cand["measured"][v][0] - t) <= tol
               for v, t in goal.items())


def _outcome(st: dict[str, Any], goal: dict[str, float], tol: float) -> QueryOutcome:
    q = st["query"]
    cands = [c for c in st["cands"] if len(c["measured"]) == len(goal)]
    if not cands:
        return QueryOutcome(q.id, q.text, dict(goal), "", {}, st["setting"], False,
                            len(st["cands"]))

    def err(c: dict[str, Any]) -> tuple[float, float]:
        worst = max(abs(c["measured"][v][0] - t) for v, t in goal.items())
        return (worst, c["ppl"] if c["ppl"] is not None else 0.0)

    best = min(cands, key=err)
    first = [c for c in cands if c.get("round") == 0]
    share = float(np.mean([_hit(c, goal, tol) for c in first])) if first else None
    return QueryOutcome(q.id, q.text, dict(goal), "", dict(best["measured"]),
                        dict(best["setting"]), _hit(best, goal, tol), len(st["cands"]),
                        best["key"], best["ppl"], first_round_hits=share)


def load_target_run(workspace: Workspace, run_id: str | None = None) -> pd.DataFrame:
    """The candidates of a ``steer target`` run with their scores (one row per candidate and
    target value): ``query_id, candidate, round, settings, value, target, intensity, low,
    high, error, hit, perplexity, response``."""
    from valueflow.errors import WorkspaceError

    runs = workspace.runs(TARGET_RUN_KIND)
    if runs.empty:
        raise WorkspaceError(f"workspace {workspace.path} holds no steer-target run",
                             hint="run `valueflow steer target ...` first")
    if run_id is None:
        run_id = str(runs.iloc[0]["run_id"])
    elif run_id not in set(runs["run_id"]):
        raise WorkspaceError(f"no steer-target run {run_id!r} in {workspace.path}")
    spec = json.loads(runs.set_index("run_id").loc[run_id, "spec"])
    store = SteerStore(workspace)
    cands = store.candidates(run_id)
    scores = store.scores_for(cands["gen_key"], spec["judge"]) if len(cands) else None
    rows = []
    tol = float(spec["settings"]["tolerance"])
    sc: dict[tuple[str, str], tuple[float, float, float]] = {}
    if scores is not None:
        for r in scores.to_dict("records"):
            sc[(str(r["gen_key"]), str(r["value"]))] = (float(r["intensity"]), float(r["low"]),
                                                        float(r["high"]))
    nan3 = (math.nan, math.nan, math.nan)
    for c in cands.to_dict("records"):
        for v, t in spec["targets"].items():
            x, lo, hi = sc.get((str(c["gen_key"]), v), nan3)
            rows.append({**{k: c[k] for k in ("query_id", "candidate", "round", "gen_key",
                                              "query", "response", "perplexity")},
                         "settings": json.loads(c["settings"]), "value": v, "target": float(t),
                         "intensity": x, "low": lo, "high": hi,
                         "error": x - float(t), "within": abs(x - float(t)) <= tol})
    import pandas as pd

    df = pd.DataFrame(rows)
    df.attrs.update(run_id=run_id, spec=spec)
    return df


def load_target_result(workspace: Workspace, run_id: str) -> TargetResult:
    """A stored ``steer target`` run as a :class:`TargetResult` (outcomes chosen as the run
    chose them: per question, the candidate nearest every target), with the latest
    calibration of each value for the run's model, regime and judge."""
    cands = load_target_run(workspace, run_id)
    spec = cands.attrs["spec"]
    goal = {str(k): float(v) for k, v in spec["targets"].items()}
    tol = float(spec["settings"]["tolerance"])
    regime = str(spec["settings"]["regime"])
    store = SteerStore(workspace)
    outcomes: list[QueryOutcome] = []
    if len(cands):
        for qid, g in cands.groupby("query_id", sort=False):
            by_c = {c: grp for c, grp in g.groupby("candidate")}

            def worst(grp: pd.DataFrame) -> float:
                e = grp["error"].abs()
                return float(e.max()) if e.notna().all() else math.inf

            best_c = min(by_c, key=lambda c: worst(by_c[c]))
            b = by_c[best_c]
            first = b.iloc[0]
            measured = {str(r["value"]): (float(r["intensity"]), float(r["low"]),
                                          float(r["high"]))
                        for r in b.to_dict("records") if math.isfinite(float(r["intensity"]))}
            round0 = [worst(grp) <= tol for grp in by_c.values() if int(grp.iloc[0]["round"]) == 0]
            outcomes.append(QueryOutcome(
                str(qid), str(first["query"]), goal, str(first["response"]), measured,
                {k: float(v) for k, v in first["settings"].items()},
                worst(b) <= tol, len(by_c), str(first["gen_key"]),
                None if first["perplexity"] is None or pd_isna(first["perplexity"])
                else float(first["perplexity"]),
                first_round_hits=float(np.mean(round0)) if round0 else None))
    order = {q: i for i, q in enumerate(spec.get("queries", []))}
    outcomes.sort(key=lambda o: order.get(o.query_id, len(order)))
    side = [v for v in _ids(spec["settings"].get("side_values") or []) if v not in goal]
    if outcomes:
        from valueflow.steer._refusal import is_refusal

        gens = store.run_generations(run_id)
        base = {str(r["query_id"]): str(r["gen_key"]) for r in gens.to_dict("records")
                if r["regime"] == "target-baseline"}
        keys = [o.gen_key for o in outcomes if o.gen_key] + list(base.values())
        sc = {(str(r["gen_key"]), str(r["value"])): float(r["intensity"])
              for r in store.scores_for(keys, str(spec["judge"])).to_dict("records")}
        for o in outcomes:
            o.refusal = bool(is_refusal(o.response))
            bk = base.get(o.query_id)
            if side and bk and o.gen_key:
                o.side_effects = {v: sc[(o.gen_key, v)] - sc[(bk, v)] for v in side
                                  if (o.gen_key, v) in sc and (bk, v) in sc}
    cals: dict[str, Calibration] = {}
    table = store.calibrations()
    for v in goal:
        rows = table[(table["model"] == spec["model"]) & (table["value"] == v)
                     & (table["regime"] == regime) & (table["judge"] == spec["judge"])]
        if len(rows):
            r = rows.iloc[-1]
            points = json.loads(r["points"])
            lo, hi = points.get("calibrated_range", [-math.inf, math.inf])
            cals[v] = Calibration(v, str(r["model"]), regime, str(r["judge"]),
                                  DoseResponse.from_dict(json.loads(r["curve"])), None, points,
                                  (float(lo), float(hi)))
    return TargetResult(run_id, regime, str(spec["judge"]), tol, outcomes, cals, cands)


def pd_isna(x: Any) -> bool:
    try:
        return bool(x != x)
    except Exception:
        return False


def target_runs(workspace: Workspace, parent: str | None = None) -> list[str]:
    """Ids of the ``steer target`` runs in the workspace (those of one steering run when
    ``parent`` is given), oldest first."""
    runs = workspace.runs(TARGET_RUN_KIND)
    if runs.empty:
        return []
    out = []
    for r in runs.itertuples():
        spec = json.loads(str(r.spec))
        if parent is None or spec.get("parent") == parent:
            out.append(str(r.run_id))
    return out[::-1]


def merge_results(results: Sequence[TargetResult]) -> list[TargetResult]:
    """Runs of the same regime, judge and tolerance merged into one result per value set
    (so a value's several targets share one plot)."""
    groups: dict[tuple[Any, ...], list[TargetResult]] = {}
    for r in results:
        key = (r.regime, r.judge, r.tolerance, tuple(sorted(r.calibrations)))
        groups.setdefault(key, []).append(r)
    merged = []
    for rs in groups.values():
        first = rs[0]
        merged.append(TargetResult(",".join(r.run_id for r in rs), first.regime, first.judge,
                                   first.tolerance, [o for r in rs for o in r.outcomes],
                                   first.calibrations, None))
    return merged
