"""The steering runner: generate every trial of a config, score the answers, store both.

The run is resumable by construction: answers are written to the workspace in chunks as
they arrive, the LLM layer caches every call, and a rerun skips answers and scores that
exist. The run's full spec is recorded with :meth:`Workspace.start_run`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valueflow.errors import ConfigError
from valueflow.steer._config import JudgeSettings, SteeringConfig
from valueflow.steer._design import (
    Condition,
    ExemplarPool,
    Query,
    build_conditions,
    load_queries,
    stable_seed,
)
from valueflow.steer._prompts import build_messages
from valueflow.steer._refusal import is_refusal
from valueflow.steer._store import SteerStore, targets_of

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.llm import Backend, ChatRequest
    from valueflow.workspace import Workspace

__all__ = ["Plan", "Trial", "load_results", "plan_steering", "run_steering"]

RUN_KIND = "steer"
_CHUNK = 128


@dataclass(frozen=True)
class Trial:
    """One condition applied to one query for one sample."""

    condition: Condition
    query: Query
    sample: int
    messages: tuple[dict[str, str], ...]


@dataclass
class Plan:
    """Everything a config expands to, before any model is called."""

    config: SteeringConfig
    conditions: list[Condition]
    queries: list[Query]
    trials: list[Trial]
    experiment_values: list[str]
    """Every value some condition targets; default answers are scored on all of them."""
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.spec, sort_keys=True, default=str).encode())
        return f"{RUN_KIND}-{self.config.name}-{digest.hexdigest()[:10]}"

    def values_to_score(self, condition: Condition) -> list[str]:
        if condition.regime == "default" or self.config.judge.score_all_values:
            return list(self.experiment_values)
        return [v for v, _ in condition.targets]


def plan_steering(cfg: SteeringConfig) -> Plan:
    """Expand ``cfg`` into conditions, queries and trials (prompts fully built)."""
    from valueflow.theories import resolve_value

    cfg.validate_design()
    conditions = build_conditions(cfg)
    queries = load_queries(cfg.queries)
    values = list(dict.fromkeys(v for c in conditions for v, _ in c.targets))
    nodes = {v: resolve_value(v) for v in values}
    pool: ExemplarPool | None = None
    needs_pool = [c for c in conditions if c.style == "user_text" and c.targets]
    if needs_pool:
        from valueflow.vidb import load_vidb

        vidb = load_vidb(cfg.user_text.vidb, values=values)
        pool = ExemplarPool(vidb)
        n = cfg.user_text.n_exemplars
        for c in needs_pool:
            for v, lv in c.targets:
                pool.check(v, lv, n)
    gen = cfg.generation
    trials: list[Trial] = []
    for c in conditions:
        for q in queries:
            for s in range(cfg.samples):
                exemplars: list[str] = []
                targets = [(nodes[v], lv) for v, lv in c.targets]
                if c.style == "user_text" and c.targets:
                    assert pool is not None
                    for v, lv in c.targets:
                        exemplars += pool.draw(v, lv, cfg.user_text.n_exemplars,
                                               stable_seed(cfg.queries.seed, c.id, q.id, s, v))
                    targets = []
                ready = c.extra.get("instruction")  # the profile prompt, built once
                if ready is not None:
                    targets = []
                msgs = build_messages(q.text, targets=targets, exemplars=exemplars,
                                      word_limit=gen.word_limit,
                                      instruction_role=gen.instruction_role,
                                      instruction=ready)
                trials.append(Trial(c, q, s, tuple(msgs)))
    from valueflow._redact import redact_credentials

    # Base URLs may carry user:password: the recorded spec (and so the run id, the report)
    # never does.
    spec = redact_credentials({
        "config": cfg.model_dump(mode="json"),
        "values": values,
        "queries": [q.id for q in queries],
        "conditions": [c.id for c in conditions],
    })
    return Plan(cfg, conditions, queries, trials, values, spec)


def _request(trial: Trial, cfg: SteeringConfig) -> ChatRequest:
    from valueflow.llm import ChatRequest

    g = cfg.generation
    return ChatRequest(messages=list(trial.messages), max_tokens=g.max_tokens,
                       temperature=g.temperature, top_p=g.top_p,
                       seed=None if g.seed is None else g.seed + trial.sample,
                       sample_index=trial.sample)


def judge_key(judge: Any, spec: str) -> str:
    """The name stored scores are keyed by: the judge's name, with its content version where
    it has one (``local@1a2b3c4d``), so a changed local judge does not reuse old scores."""
    name = str(getattr(judge, "name", spec))
    version = getattr(judge, "version", None)
    return f"{name}@{version}" if isinstance(version, str) and version else name


def _gen_key(label: str, backend: Backend, req: ChatRequest) -> str:
    from valueflow.llm._types import canonical_json

    raw = canonical_json({"model": label, "spec": backend.spec,
                          "identity": backend.cache_identity(), "request": req.payload()})
    return hashlib.sha256(raw.encode()).hexdigest()


def _build_backend(m: Any, cfg: SteeringConfig) -> Backend:
    from valueflow.llm import get_backend

    opts = dict(m.options)
    if m.base_url is not None:
        opts["base_url"] = m.base_url
    return get_backend(m.spec, **opts)


def _build_judge(cfg: SteeringConfig, workspace: Workspace | None = None) -> Any:
    """The judge of ``cfg`` with its options split between the judge and its LLM backend
    (``judge: {spec: openai/<m>, options: {base_url: ..., api_key_env: ...}}``); a bad
    option is a one-line error. LLM calls are cached in ``workspace``."""
    try:
        from valueflow.judges import judge_from_options
    except ImportError as exc:
        raise ConfigError(f"cannot build judge {cfg.judge.spec!r}: the judges package is not "
                          f"available ({exc})") from exc
    return judge_from_options(cfg.judge.spec, cfg.judge.options, workspace=workspace)


def _check_judge_options(cfg: SteeringConfig) -> None:
    """A dry run's check of the judge settings, without loading a local model."""
    spec = cfg.judge.spec.strip()
    if spec == "local":
        bad = sorted(set(cfg.judge.options) - {"local_path"})
        if bad:
            raise ConfigError(f"judge 'local' does not take the option {bad[0]!r}",
                              hint="backend options such as base_url are for LLM judges")
        return
    if spec == "sim" or spec.startswith("sim/"):
        return  # needs a truth table, which a config cannot hold; built when scoring
    judge = _build_judge(cfg)
    client = getattr(judge, "client", None)
    if client is not None:
        client.close()


def _is_direct(judge: Any) -> bool:
    return callable(getattr(judge, "score", None)) and not callable(getattr(judge, "rank", None))


def run_steering(
    cfg: SteeringConfig,
    workspace: Workspace,
    *,
    dry_run: bool = False,
    progress: bool = True,
    backends: dict[str, Backend] | None = None,
    judge: Any = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or, with ``dry_run``, cost) a steering experiment.

    Args:
        cfg: The experiment.
        workspace: Where answers, scores and the run spec are stored.
        dry_run: Count calls and tokens without generating or scoring anything.
        progress: Show progress bars (when stderr is a terminal).
        backends: Backends by model label, overriding the specs (tests, custom backends).
        judge: A judge object overriding ``cfg.judge.spec`` (a ``DirectScorer`` or a ranking
            judge accepted by :func:`valueflow.evaluate.score_texts`).
        echo: Where to write one-line progress messages.

    Returns:
        A summary: run id, per-model counts (trials, reused, generated, failed, refusals,
        last_error), scores made, reused and failed (with the judge's last error), the
        status (``done``, ``partial``, ``failed``; the run record says the same), and for a
        dry run the cost estimate.

    Raises:
        RunFailedError: a server could not be reached (or refused the credentials) and
            the run stopped; what was done is saved.
    """
    import asyncio

    from valueflow.errors import BackendError, IncompleteRunError, RunFailedError

    say = echo or (lambda _m: None)
    plan = plan_steering(cfg)
    labels = cfg.labels()
    store = SteerStore(workspace)
    # The judge is built (its settings checked) before any answer is paid for, and its
    # content version keys the stored scores (a changed judge never reuses old scores).
    own_judge = judge is None
    if own_judge and not dry_run:
        judge = _build_judge(cfg, workspace)
    judge_name = cfg.judge.spec if judge is None else judge_key(judge, cfg.judge.spec)
    plan.spec["judge"] = judge_name
    run_id = plan.run_id
    summary: dict[str, Any] = {"run_id": run_id, "dry_run": dry_run,
                               "conditions": len(plan.conditions), "queries": len(plan.queries),
                               "trials_per_model": len(plan.trials), "models": {}}
    if dry_run:
        if judge is None:
            _check_judge_options(cfg)
        summary["models"] = _generate_all(plan, labels, store, workspace, run_id, backends,
                                          True, progress, say)
        summary["scores"] = _score_all(plan, store, workspace, run_id, judge, judge_name,
                                       True, progress, say)
        summary["status"] = "dry-run"
        return summary
    status = "failed"
    try:
        _check_judge_values(judge, plan, workspace)
    except BaseException:
        _close_judge(judge, own_judge)
        raise
    workspace.start_run(RUN_KIND, plan.spec, run_id=run_id)
    try:
        per_model = _generate_all(plan, labels, store, workspace, run_id, backends, False,
                                  progress, say, judge=judge)
        summary["models"] = per_model
        summary["scores"] = _score_all(plan, store, workspace, run_id, judge, judge_name,
                                       False, progress, say)
        if cfg.targets is not None and cfg.targets.intensities:
            summary["targets"] = _run_targets(cfg, workspace, judge, run_id, backends,
                                              progress, say)
        status = _status(per_model, summary["scores"])
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = "interrupted"
        raise
    except BackendError as exc:  # a server that cannot be reached stopped the run
        raise RunFailedError(f"steering run {run_id} stopped: {exc.message}",
                             hint=exc.hint or "answers and scores so far are saved; run the "
                             "same command again to resume", run_id=run_id) from exc
    except IncompleteRunError as exc:  # the judge stopped (scoring raises it with the cause)
        raise RunFailedError(f"steering run {run_id} stopped: {exc.message}",
                             hint=exc.hint, run_id=run_id) from exc
    finally:
        workspace.finish_run(run_id, status)
        _close_judge(judge, own_judge)
    summary["status"] = status
    return summary


def _run_targets(cfg: SteeringConfig, workspace: Workspace, judge: Any, parent: str,
                 backends: dict[str, Backend] | None, progress: bool,
                 say: Callable[[str], None]) -> dict[str, Any]:
    """The config's ``targets``: one closed-loop run per value and target intensity, each
    recorded with this steering run as its parent (the report shows them together)."""
    from valueflow.llm import get_backend
    from valueflow.steer._target import steer_to_target

    t = cfg.targets
    assert t is not None
    spec = t.model or ("hf/smollm2" if t.regime == "activation" else cfg.models[0].spec)
    backend = (backends or {}).get(spec) or get_backend(spec)
    settings: dict[str, Any] = {"regime": t.regime, "tolerance": t.tolerance, "n": t.n,
                                "budget": t.budget, "layers": t.layers,
                                "judge": cfg.judge.model_dump()}
    if t.coefficients:
        settings["coefficients"] = t.coefficients
    side = t.side_values if t.side_values is not None else list(cfg.values)
    out: dict[str, Any] = {"model": spec, "regime": t.regime, "runs": []}
    hits: list[bool] = []
    for value, intensities in t.intensities.items():
        for x in intensities:
            say(f"steering {spec} to {value} = {x:+g} ({t.regime}, {t.queries} questions)")
            res = steer_to_target(backend, {value: x}, workspace, queries=t.queries,
                                  settings={**settings, "side_values": side}, judge=judge,
                                  progress=progress, echo=say, parent=parent)
            hits += [o.hit for o in res.outcomes]
            out["runs"].append({"run_id": res.run_id, "value": value, "target": x,
                                "hit_rate": res.hit_rate, "rmse": res.rmse})
    out["hit_rate"] = sum(hits) / len(hits) if hits else None
    return out


def _close_judge(judge: Any, own: bool) -> None:
    """Commit and close the LLM client of a judge this run built."""
    client = getattr(judge, "client", None) if own else None
    if client is not None:
        client.close()


def _status(per_model: dict[str, Any], scores: dict[str, Any]) -> str:
    """``done``; ``partial`` when some answers or scores failed; ``failed`` when no answer,
    or no score, is usable at all."""
    answers = sum(m.get("trials", 0) for m in per_model.values())
    usable = sum(m.get("reused", 0) + m.get("generated", 0) for m in per_model.values())
    failed_gen = sum(m.get("failed", 0) for m in per_model.values())
    ok_scores = scores.get("scored", 0) + scores.get("reused", 0)
    failed_scores = scores.get("failed", 0)
    if (answers and not usable) or (failed_scores and not ok_scores):
        return "failed"
    return "partial" if failed_gen or failed_scores else "done"


def _generate_all(plan: Plan, labels: list[str], store: SteerStore, workspace: Workspace,
                  run_id: str, backends: dict[str, Backend] | None, dry_run: bool,
                  progress: bool, say: Callable[[str], None], *, judge: Any = None
                  ) -> dict[str, Any]:
    """Generate every model's missing answers; the models run at the same time, so a run
    over several servers keeps all of them busy (each model keeps its own concurrency).

    Before any answer is generated, an LLM ``judge``'s server gets one small request: a
    judge that cannot be reached stops the run before generation is paid for."""
    import asyncio

    from valueflow.llm import LLMClient, run_sync

    cfg = plan.config
    out: dict[str, Any] = {}
    jobs = []
    for m, label in zip(cfg.models, labels, strict=True):
        backend = (backends or {}).get(label) or _build_backend(m, cfg)
        reqs = [_request(t, cfg) for t in plan.trials]
        keys = [_gen_key(label, backend, r) for r in reqs]
        have = store.existing_generations(keys)
        todo = [i for i, k in enumerate(keys) if k not in have]
        out[label] = {"trials": len(keys), "reused": len(keys) - len(todo)}
        if dry_run:
            client = LLMClient(backend, workspace)
            out[label]["estimate"] = client.estimate([reqs[i] for i in todo]).as_dict()
            client.close()
            continue
        store.link(have, run_id)
        say(f"{label}: {len(todo)} answers to generate, {len(have)} already stored")
        jobs.append((label, backend, reqs, keys, todo, len(have)))
    if not jobs:
        return out
    if any(job[4] for job in jobs):
        _check_judge_reachable(judge, say)
    # One progress bar at a time: with several models at once, progress is the
    # per-chunk "answers stored" lines.
    bars = progress and len(jobs) == 1

    async def one(label: str, backend: Backend, reqs: list[Any], keys: list[str],
                  todo: list[int], n_have: int) -> None:
        generated = failed = refusals = recovered = 0
        errors: list[str] = []
        with LLMClient(backend, workspace, run_id=run_id,
                       max_concurrency=cfg.generation.max_concurrency) as client:
            for start in range(0, len(todo), _CHUNK):
                part = todo[start:start + _CHUNK]
                results = await client.generate([reqs[i] for i in part], progress=bars)
                rows = []
                for i, res in zip(part, results, strict=True):
                    if not res.ok:
                        failed += 1
                        errors.append(str(res.error))
                        continue
                    # An answer from the call cache was paid for by an earlier run that
                    # stopped before storing it (killed): it is reused, not generated.
                    recovered += bool(res.cached)
                    t = plan.trials[i]
                    refused = is_refusal(res.text)
                    refusals += refused
                    rows.append({
                        "gen_key": keys[i], "model": label, "regime": t.condition.regime,
                        "condition": t.condition.id, "style": t.condition.style,
                        "targets": t.condition.targets_json(), "query_id": t.query.id,
                        "query_set": t.query.source, "category": t.query.category,
                        "query": t.query.text, "sample": t.sample,
                        "messages": json.dumps(list(t.messages), ensure_ascii=False),
                        "response": res.text, "refusal": bool(refused),
                        "finish_reason": res.finish_reason})
                store.add_generations(rows, run_id)
                generated += len(rows)
                say(f"{label}: {n_have + generated}/{len(keys)} answers stored")
        out[label].update(generated=generated - recovered,
                          reused=out[label]["reused"] + recovered, failed=failed,
                          refusals_new=refusals)
        if errors:
            out[label]["first_error"] = errors[0]
            out[label]["last_error"] = errors[-1]

    async def all_models() -> None:
        try:
            async with asyncio.TaskGroup() as tg:  # one model failing stops the others
                for job in jobs:
                    tg.create_task(one(*job))
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None

    run_sync(all_models())
    return out


def _check_judge_values(judge: Any, plan: Plan, workspace: Workspace) -> None:
    """The judge can score every value of the experiment: a local scorer has texts for it,
    a ranking judge has anchors in the configured VIDB. Checked before generation."""
    from valueflow.errors import UnknownNameError
    from valueflow.theories import resolve_value

    nodes = [resolve_value(v) for v in plan.experiment_values]
    name = getattr(judge, "name", plan.config.judge.spec)
    if _is_direct(judge):
        known = getattr(judge, "values_", None)
        if known is None:
            return
        for node in nodes:
            if node.id not in set(known):
                parents = [p for p in node.parents if p in set(known)]
                raise UnknownNameError(
                    f"judge {name!r} has no texts for {node.id}, a value of this experiment",
                    hint=(f"{node.id} is a part of {parents[0]}: steer that instead"
                          if parents else "steer evaluation values (valueflow theories list), "
                          "or give the judge a VIDB with texts for it"))
    elif callable(getattr(judge, "rank", None)):
        from valueflow.evaluate import anchor_pools

        anchor_pools(plan.config.judge.vidb, nodes, workspace=workspace)  # names what lacks


def _check_judge_reachable(judge: Any, say: Callable[[str], None]) -> None:
    """One small request to an LLM judge's server (no-op for local judges)."""
    backend: Any = getattr(getattr(judge, "client", None), "backend", None)
    ping = getattr(backend, "ping", None)
    if backend is None or ping is None:
        return
    from valueflow.llm import run_sync

    say(f"checking that judge {backend.spec} answers before generating")
    run_sync(ping())


def _score_all(plan: Plan, store: SteerStore, workspace: Workspace, run_id: str, judge: Any,
               judge_name: str, dry_run: bool, progress: bool, say: Callable[[str], None]
               ) -> dict[str, Any]:
    cfg = plan.config
    if dry_run:
        n_pairs = sum(len(plan.values_to_score(t.condition)) for t in plan.trials)
        return {"judge": judge_name, "pairs_upper_bound_per_model": n_pairs}
    gens = store.run_generations(run_id)
    done = store.existing_scores(judge_name)
    by_cond = {c.id: c for c in plan.conditions}
    need: dict[str, list[tuple[str, str]]] = {}
    reused = 0
    for key, cond_id, text in zip(gens["gen_key"], gens["condition"], gens["response"],
                                  strict=True):
        if not str(text).strip():
            continue  # empty answers are refusals; there is nothing to score
        cond = by_cond.get(cond_id)
        values = (plan.values_to_score(cond) if cond is not None
                  else list(plan.experiment_values))
        for v in values:
            if (key, v) in done:
                reused += 1
            else:
                need.setdefault(v, []).append((key, str(text)))
    total = sum(len(x) for x in need.values())
    info: dict[str, Any] = {"judge": judge_name, "reused": reused, "scored": 0, "failed": 0}
    if not total:
        return info
    if judge is None:
        judge = _build_judge(cfg, workspace)
    say(f"scoring {total} (answer, value) pairs with judge {judge_name}")
    from valueflow.judges import long_text_note
    from valueflow.theories import resolve_value

    if hasattr(judge, "client"):
        note = long_text_note([t for items in need.values() for _, t in items])
        if note:
            say(note)
    for value, items in need.items():
        node = resolve_value(value)
        for start in range(0, len(items), 512):
            part = items[start:start + 512]
            scores, last_error = _score_texts([t for _, t in part], node, judge, cfg.judge,
                                              workspace, progress)
            # A judge failure is not a score: it is not stored, so a rerun asks again.
            good = [(k, value, judge_name, *sc) for (k, _), sc in zip(part, scores, strict=True)
                    if math.isfinite(sc[0])]
            store.add_scores(good)
            info["scored"] += len(good)
            info["failed"] += len(part) - len(good)
            if len(good) < len(part) and last_error:
                info["last_error"] = last_error
    return info


def _score_texts(texts: Sequence[str], node: Any, judge: Any, jcfg: JudgeSettings,
                 workspace: Workspace, progress: bool
                 ) -> tuple[list[tuple[float, float, float, int, int]], str | None]:
    """(intensity, low, high, n_windows, n_failures) per text (intensity NaN where the
    judge gave nothing usable), and the judge's last error."""
    if _is_direct(judge):
        import numpy as np

        arr = np.asarray(judge.score(list(texts), node), dtype=float)
        if arr.shape != (len(texts), 3):
            raise ConfigError(f"judge {getattr(judge, 'name', judge)!r} returned shape "
                              f"{arr.shape} for {len(texts)} texts; expected ({len(texts)}, 3)")
        return [(float(a), float(b), float(c), 0, 0) for a, b, c in arr], None
    from valueflow.evaluate import score_texts

    uniq = list(dict.fromkeys(texts))
    kwargs: dict[str, Any] = {k: v for k, v in (("k", jcfg.k), ("m", jcfg.m),
                                                ("design", jcfg.design)) if v is not None}
    if not callable(getattr(judge, "rank", None)) and callable(getattr(judge, "rate", None)):
        kwargs["method"] = "rating"  # judge options {method: rating}: the rating baseline
    df = score_texts(uniq, [node.id], judge, jcfg.vidb, workspace=workspace,
                     progress=progress, **kwargs)
    by_text = {str(r["text"]): r for r in df.to_dict("records")}
    out = []
    for t in texts:
        r = by_text[t]
        out.append((float(r["intensity"]), float(r["low"]), float(r["high"]),
                    int(r.get("n_windows", 0) or 0), int(r.get("n_failures", 0) or 0)))
    return out, df.attrs.get("last_error")


def load_results(workspace: Workspace, run_id: str | None = None) -> pd.DataFrame:
    """The tidy results of a steering run: one row per (answer, scored value).

    ``attrs`` hold the run's ``run_id``, ``spec`` and ``status`` (``done``, ``partial``,
    ``failed``, ``interrupted``, ``running``).

    Columns: ``run_id, model, regime, condition, style, targets, n_targets, query_id,
    category, sample, refusal, value, level`` (the value's target level in the condition;
    NaN when the condition does not target it, e.g. the default), ``intensity, low, high``
    (NaN where an answer was not scored, e.g. empty), ``response``.

    Args:
        run_id: The run (default: the most recent steering run).
    """
    import pandas as pd

    from valueflow.errors import WorkspaceError

    store = SteerStore(workspace)
    runs = workspace.runs(RUN_KIND)
    if runs.empty:
        raise WorkspaceError(f"workspace {workspace.path} holds no steering run",
                             hint="run `valueflow steer run CONFIG` first")
    if run_id is None:
        run_id = str(runs.iloc[0]["run_id"])
    elif run_id not in set(runs["run_id"]):
        from valueflow.errors import UnknownNameError, close_matches

        near = close_matches(run_id, runs["run_id"])
        raise UnknownNameError(f"no steering run {run_id!r} in {workspace.path}",
                               hint=f"did you mean {near[0]}?" if near else
                               f"runs: {', '.join(runs['run_id'][:5])}")
    spec = json.loads(runs.set_index("run_id").loc[run_id, "spec"])
    status = str(runs.set_index("run_id").loc[run_id, "status"])
    judge = spec.get("judge") or spec["config"]["judge"]["spec"]
    all_values = list(spec["values"])
    score_all = bool(spec["config"]["judge"].get("score_all_values"))
    gens = store.run_generations(run_id)
    scores = store.run_scores(run_id, judge)
    rows = []
    for g in gens.to_dict("records"):
        targets = targets_of(g["targets"])
        values = all_values if (g["regime"] == "default" or score_all) else list(targets)
        for v in values:
            rows.append({"run_id": run_id, "gen_key": g["gen_key"], "model": g["model"],
                         "regime": g["regime"], "condition": g["condition"],
                         "style": g["style"], "targets": g["targets"],
                         "n_targets": len(targets), "query_id": g["query_id"],
                         "category": g["category"], "sample": int(g["sample"]),
                         "refusal": bool(g["refusal"]), "value": v,
                         "level": float(targets[v]) if v in targets else float("nan"),
                         "response": g["response"]})
    df = pd.DataFrame(rows)
    df.attrs["status"] = status
    if df.empty:
        return df
    sc = scores.drop_duplicates(["gen_key", "value"])[["gen_key", "value", "intensity", "low",
                                                       "high"]]
    df = df.merge(sc, on=["gen_key", "value"], how="left")
    df.attrs["run_id"] = run_id
    df.attrs["spec"] = spec
    df.attrs["status"] = status
    return df
