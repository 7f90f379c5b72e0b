"""``score_texts``: calibrated value intensities of texts, from lists or DataFrames."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from valueflow.errors import ConfigError, DataError
from valueflow.evaluate._anchors import (
    AnchorPool,
    VIDBSource,
    anchor_pools,
    left_out_note,
    user_vidb_frame,
)
from valueflow.evaluate._engine import (
    Design,
    Estimator,
    ValueScores,
    check_window_size,
    score_value,
    windows_for_plan,
)

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.theories import ValueNode
    from valueflow.workspace import Workspace

__all__ = ["OUTPUT_COLUMNS", "ScoreJob", "estimate_score_cost", "prepare_score", "score_status",
           "score_texts"]

OUTPUT_COLUMNS = ["text", "value", "intensity", "low", "high", "n_windows", "n_failures",
                  "judge", "beta", "method", "vidb"]
"""Columns every score table has (input columns are carried along before them)."""

_MAX_ROWS_LISTED = 8


def _resolve(name: Any) -> ValueNode:
    from valueflow.theories import ValueNode, resolve_value

    return name if isinstance(name, ValueNode) else resolve_value(str(name))


def _input_frame(texts: Any, text_column: str) -> pd.DataFrame:
    import pandas as pd

    from valueflow.tables import require_columns

    if isinstance(texts, pd.DataFrame):
        require_columns(texts, [text_column], source="the input")
        df = texts.reset_index(drop=True)
        if text_column != "text":
            if "text" in df.columns:
                df = df.rename(columns={"text": "text_input"})
            df = df.rename(columns={text_column: "text"})
        return df
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, pd.Series):
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise DataError(f"texts must be a list of strings or a DataFrame, not "
                        f"{type(texts).__name__}")
    return pd.DataFrame({"text": list(texts)})


def _check_texts(df: pd.DataFrame) -> None:
    bad = [i for i, t in enumerate(df["text"]) if not isinstance(t, str) or not t.strip()]
    if bad:
        shown = ", ".join(str(i + 1) for i in bad[:_MAX_ROWS_LISTED])
        more = f" and {len(bad) - _MAX_ROWS_LISTED} more" if len(bad) > _MAX_ROWS_LISTED else ""
        raise DataError(f"{len(bad)} input row(s) have an empty text (row {shown}{more})",
                        hint="drop or fill those rows; every row needs a text to score")
    if df.empty:
        raise DataError("the input has no rows", hint="give at least one text to score")


class ScoreJob:
    """A validated scoring task: rows, the value of each row, anchor pools, the judge.

    Built by :func:`prepare_score`; everything a user can get wrong is checked before any
    judge call is made.
    """

    def __init__(self, frame: pd.DataFrame, row_values: list[ValueNode],
                 pools: dict[str, AnchorPool], judge: Any, *, k: int, m: int, design: Design,
                 method: Literal["ranking", "rating", "direct"], estimator: Estimator, seed: int) -> None:
        self.frame = frame
        self.row_values = row_values
        self.pools = pools
        self.judge = judge
        self.k, self.m, self.design = k, m, design
        self.method, self.estimator, self.seed = method, estimator, seed
        self.notes: list[str] = []
        """One-line warnings for the user (texts cut to fit a judge prompt ...)."""

    def groups(self) -> dict[str, tuple[ValueNode, list[int], list[str]]]:
        """Per value id: the node, the frame rows, and the distinct texts to score."""
        out: dict[str, tuple[ValueNode, list[int], list[str]]] = {}
        for row, v in enumerate(self.row_values):
            node, rows, _ = out.setdefault(v.id, (v, [], []))
            rows.append(row)
        for vid, (node, rows, _) in out.items():
            texts = list(dict.fromkeys(self.frame["text"].iloc[rows].tolist()))
            out[vid] = (node, rows, texts)
        return out

    @property
    def judge_name(self) -> str:
        return str(getattr(self.judge, "name", type(self.judge).__name__))

    def spec(self) -> dict[str, Any]:
        """The run's settings, recorded with the run in the workspace (no credentials)."""
        from valueflow._redact import redact_credentials

        return redact_credentials({
                "judge": self.judge_name, "k": self.k, "m": self.m, "design": self.design,
                "method": self.method, "estimator": self.estimator, "seed": self.seed,
                "values": sorted({v.id for v in self.row_values}),
                "n_rows": len(self.frame),
                "vidb": {vid: p.source for vid, p in self.pools.items()}})


def prepare_score(
    texts: Any,
    values: str | ValueNode | Sequence[str | ValueNode] | None = None,
    judge: Any = "local",
    vidb: VIDBSource = "auto",
    *,
    k: int = 6,
    m: int = 3,
    design: Design = "adaptive",
    method: Literal["ranking", "rating"] = "ranking",
    estimator: Estimator = "bayes",
    value_column: str | None = None,
    text_column: str = "text",
    intensity_column: str | None = None,
    workspace: Workspace | None = None,
    seed: int = 0,
    judge_options: Mapping[str, Any] | None = None,
) -> ScoreJob:
    """Validate inputs and build a :class:`ScoreJob` (see :func:`score_texts`)."""
    from valueflow.judges import DirectScorer, make_judge

    if design not in ("adaptive", "bucket", "random"):
        raise ConfigError(f"unknown design {design!r}", hint="use adaptive, bucket or random")
    if method not in ("ranking", "rating"):
        raise ConfigError(f"unknown method {method!r}", hint="use ranking or rating")
    if estimator not in ("bayes", "reference"):
        raise ConfigError(f"unknown estimator {estimator!r}", hint="use bayes or reference")
    if m < 1:
        raise ConfigError(f"--m must be at least 1 window per text, got {m}")
    is_local = isinstance(judge, str) and judge.strip() == "local"
    if method == "rating" and (is_local or (isinstance(judge, DirectScorer)
                                            and not hasattr(judge, "rate"))):
        raise ConfigError(f"judge {getattr(judge, 'name', judge)!r} cannot rate texts: it "
                          "predicts intensities directly, so --method does not apply to it",
                          hint="drop --method rating, or use an LLM judge to rate")
    frame = _input_frame(texts, text_column)
    _check_texts(frame)
    if (values is None) == (value_column is None):
        raise ConfigError("give the values to score, or a value column — exactly one of them",
                          hint="--value benevolence (repeatable) or --value-column COLUMN")
    if value_column is not None:
        from valueflow.tables import require_columns

        require_columns(frame, [value_column], source="the input")
        names = frame[value_column].tolist()
        cache: dict[str, ValueNode] = {}
        row_values = []
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise DataError(f"input row {i + 1} has no value in column {value_column!r}")
            if name not in cache:
                cache[name] = _resolve(name)
            row_values.append(cache[name])
        base = frame
    else:
        assert values is not None
        vlist = [values] if isinstance(values, str) or not isinstance(values, Sequence) else list(
            values)
        nodes = list({v.id: v for v in (_resolve(x) for x in vlist)}.values())
        if not nodes:
            raise ConfigError("no value to score", hint="--value benevolence")
        import pandas as pd

        # Long format: every row once per value.
        base = pd.concat([frame] * len(nodes), ignore_index=True)
        row_values = [v for v in nodes for _ in range(len(frame))]
    left_out: str | None = None
    opts: dict[str, Any] = dict(judge_options or {})
    if is_local and not opts.get("local_path"):
        # The local scorer learns from the VIDB the user names (its texts for the values it
        # has, the seed's for the rest); the seed alone is the shipped fit.
        scored = list({v.id: v for v in row_values}.values())
        user = user_vidb_frame(vidb, scored, workspace=workspace,
                               intensity_column=intensity_column)
        left_out = left_out_note(user)  # simulated or unreliable workspace items
        _check_local_values(scored, user)  # before any model is loaded
        if user is not None:
            opts.update(local_vidb=user, local_values=[v.id for v in scored])
    if isinstance(judge, str):
        opts.setdefault("seed", seed)
        judge = make_judge(judge, method=method, workspace=workspace, **opts)
    if method == "rating" and not (hasattr(judge, "rate") or isinstance(judge, DirectScorer)):
        raise ConfigError(f"judge {getattr(judge, 'name', judge)!r} cannot rate texts",
                          hint="use an LLM judge with --method rating")
    if method == "ranking" and not (hasattr(judge, "rank") or isinstance(judge, DirectScorer)):
        raise ConfigError(f"judge {getattr(judge, 'name', judge)!r} cannot rank windows",
                          hint="use a ranking judge, or --method rating")
    unique_values = list({v.id: v for v in row_values}.values())
    direct = isinstance(judge, DirectScorer) and not hasattr(judge, "rank")
    needs_anchors = method == "ranking" and not direct
    pools = anchor_pools(vidb, unique_values, workspace=workspace,
                         intensity_column=intensity_column) if needs_anchors else {}
    # A direct scorer predicts intensities itself: record that instead of the unused method.
    job = ScoreJob(base, row_values, pools, judge, k=k, m=m, design=design,
                   method="direct" if direct else method, estimator=estimator, seed=seed)
    if left_out:
        job.notes.append(f"local judge refit on the workspace VIDB, {left_out}")
    check = getattr(judge, "check_texts", None)
    prompted: list[str] = []
    for vid, (_node, _rows, texts_v) in job.groups().items():
        if needs_anchors:
            check_window_size(pools[vid], texts_v, k, vid)
        if callable(check):
            check(texts_v + (pools[vid].texts if needs_anchors else []))
        prompted += texts_v + (pools[vid].texts if needs_anchors else [])
    if hasattr(judge, "client"):  # an LLM judge: its prompts cut very long texts
        from valueflow.judges import long_text_note

        note = long_text_note(prompted)
        if note:
            job.notes.append(note)
    return job


def _check_local_values(values: list[ValueNode], user: pd.DataFrame | None) -> None:
    """Every value must have texts the local scorer learns from (the seed's or the user's
    VIDB's): checked before the scorer's model loads, not after."""
    from valueflow.errors import UnknownNameError
    from valueflow.vidb import load_seed

    known = set(load_seed()["value"].unique())
    if user is not None and "value" in user.columns:
        known |= set(user["value"].astype(str).unique())
    for v in values:
        if v.id in known:
            continue
        parents = [p for p in v.parents if p in known]
        hint = (f"{v.id} is a part of {parents[0]}: score that, or add texts for {v.id} with "
                "--vidb FILE" if parents else
                "the local judge knows the 32 evaluation values (valueflow theories list); "
                "add texts for this value with --vidb FILE, or use an LLM judge with anchors")
        raise UnknownNameError(f"the local judge has no texts for {v.id} ({v.name})", hint=hint)


def estimate_score_cost(job: ScoreJob) -> dict[str, Any]:
    """Judge calls and tokens a run would spend, without calling anything (``--dry-run``).

    For LLM judges the client's estimate counts cache hits, so a resumed run shows only
    what is left. Adaptive runs are estimated with strata windows of the same number.
    Corrective re-asks are not counted (they happen only after unreadable answers).
    """
    client = getattr(job.judge, "client", None)
    total: dict[str, Any] = {"windows": 0, "calls": 0, "cached": 0, "prompt_tokens": 0,
             "max_completion_tokens": 0, "judge": job.judge_name, "exact": True}
    for vid, (node, _rows, texts) in job.groups().items():
        if job.method == "rating":
            n_req = len(texts)
            build = getattr(job.judge, "requests", None)
            reqs = build(node, texts) if build and client is not None else None
        elif job.pools:
            ids = windows_for_plan(job.pools[vid], len(texts), k=job.k, m=job.m,
                                   design=job.design, seed=job.seed, value_id=vid)
            pool = job.pools[vid]
            windows = [[texts[i], *(pool.texts[j] for j in w)]
                       for i in range(len(texts)) for w in ids[i]]
            n_req = len(windows)
            build = getattr(job.judge, "requests", None)
            reqs = build(node, windows) if build and client is not None else None
            total["exact"] = total["exact"] and job.design != "adaptive"
        else:
            n_req, reqs = 0, None
        total["windows"] += n_req
        if reqs is not None and client is not None:
            est = client.estimate(reqs)
            total["calls"] += est.calls
            total["cached"] += est.cached
            total["prompt_tokens"] += est.prompt_tokens
            total["max_completion_tokens"] += est.max_completion_tokens
        else:
            total["calls"] += n_req if client is not None else 0
    return total


def score_texts(
    texts: Any,
    values: str | ValueNode | Sequence[str | ValueNode] | None = None,
    judge: Any = "local",
    vidb: VIDBSource = "auto",
    *,
    k: int = 6,
    m: int = 3,
    design: Design = "adaptive",
    method: Literal["ranking", "rating"] = "ranking",
    estimator: Estimator = "bayes",
    value_column: str | None = None,
    text_column: str = "text",
    intensity_column: str | None = None,
    workspace: Workspace | None = None,
    seed: int = 0,
    progress: bool = True,
    judge_options: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> pd.DataFrame:
    """Score how strongly each text expresses each value, on the calibrated [-10, 10] scale.

    Args:
        texts: A list of strings, or a DataFrame with a ``text`` column (other columns are
            carried through to the result).
        values: One value or several (any accepted spelling: ``benevolence``,
            ``mft:care_harm``); every text is scored against every value.
        judge: A judge object or spec: ``"local"`` (the embedded scorer), ``"sim"`` (needs
            ``judge_options={"truth": ...}``) or an LLM backend spec (``openai/<model>``).
        vidb: ``"auto"`` (the workspace's VIDB where it has anchors for a value, else the
            bundled seed), ``"seed"``, ``"workspace"``, a file, or a DataFrame.
        k: Window size: the text plus ``k - 1`` anchors.
        m: Windows per text.
        design: ``"adaptive"`` (rounds; anchors placed around the current estimate),
            ``"bucket"`` (one anchor per intensity stratum) or ``"random"``.
        method: ``"ranking"`` or ``"rating"`` (the baseline: one rating per text).
        estimator: ``"bayes"`` (anchored Plackett–Luce with estimated judge β, posterior
            mean and 90 % interval) or ``"reference"`` (the paper's reference method, for
            comparison; no interval).
        value_column: Instead of ``values``: score each row against the value in this
            column of the DataFrame.
        text_column: The input's text column.
        intensity_column: The intensity column of a VIDB file.
        workspace: Caches judge calls (a rerun resumes without re-sending answered calls)
            and stores the scores, keyed by run.
        seed: Seeds window choice and display order.
        progress: Show progress on an interactive terminal.
        judge_options: Passed to :func:`valueflow.judges.make_judge` for a spec ``judge``.
        run_id: Resume or name the run (default: a new id).

    Returns:
        One row per (input row, value): the input's columns, then ``text``, ``value``,
        ``intensity``, ``low``, ``high`` (90 % interval), ``n_windows`` (windows that gave a
        ranking), ``n_failures`` (windows that failed after a corrective re-ask), ``judge``,
        ``beta`` (the judge's estimated sharpness), ``method`` and ``vidb`` (which VIDB gave
        the anchors).
    """
    job = prepare_score(texts, values, judge, vidb, k=k, m=m, design=design, method=method,
                        estimator=estimator, value_column=value_column, text_column=text_column,
                        intensity_column=intensity_column, workspace=workspace, seed=seed,
                        judge_options=judge_options)
    return run_score(job, workspace=workspace, progress=progress, run_id=run_id)


def run_score(job: ScoreJob, *, workspace: Workspace | None = None, progress: bool = True,
              run_id: str | None = None) -> pd.DataFrame:
    """Run a prepared :class:`ScoreJob`; records the run and its scores in ``workspace``."""
    from valueflow.errors import BackendError, RunFailedError
    from valueflow.llm import run_sync

    rid = workspace.start_run("score", job.spec(), run_id=run_id) if workspace else None
    try:
        result = run_sync(_run(job, progress))
    except BackendError as exc:  # the judge cannot be reached: the run stopped early
        if workspace is not None and rid is not None:
            workspace.finish_run(rid, "failed")
        raise RunFailedError(f"scoring stopped: {exc.message}", hint=exc.hint or
                             "judge answers so far are cached; run the same command again "
                             "to resume", run_id=rid) from exc
    except (KeyboardInterrupt, asyncio.CancelledError):
        if workspace is not None and rid is not None:
            workspace.finish_run(rid, "interrupted")
        raise
    except BaseException:
        if workspace is not None and rid is not None:
            workspace.finish_run(rid, "failed")
        raise
    status = score_status(result)
    result.attrs["status"] = status
    if workspace is not None and rid is not None:
        from valueflow.evaluate._store import save_scores

        # Rows without a usable result are not stored: they are not a measurement, and a
        # rerun (same --run-id) asks the judge again for them.
        save_scores(workspace, rid, result[np.isfinite(result["intensity"].to_numpy(float))])
        workspace.finish_run(rid, status)
        result.attrs["run_id"] = rid
    return result


def score_status(result: pd.DataFrame) -> str:
    """``done`` when every row has an intensity, ``partial`` when some lack one, ``failed``
    when none has one."""
    ok = np.isfinite(result["intensity"].to_numpy(dtype=float))
    if ok.all():
        return "done"
    return "partial" if ok.any() else "failed"


async def _run(job: ScoreJob, progress: bool) -> pd.DataFrame:
    n = len(job.frame)
    cols: dict[str, Any] = {
        "value": [v.id for v in job.row_values],
        "intensity": np.full(n, np.nan), "low": np.full(n, np.nan),
        "high": np.full(n, np.nan), "n_windows": np.zeros(n, dtype=np.int64),
        "n_failures": np.zeros(n, dtype=np.int64), "beta": np.full(n, np.nan),
        "vidb": [""] * n,
    }
    texts_col = job.frame["text"].tolist()
    errors: list[str] = []
    for vid, (node, rows, texts) in job.groups().items():
        pool = job.pools.get(vid)
        res: ValueScores = await score_value(
            job.judge, node, texts, pool if pool is not None else AnchorPool(vid, [], np.zeros(0),
                                                                             ""),
            k=job.k, m=job.m, design=job.design,
            method="ranking" if job.method == "direct" else job.method, estimator=job.estimator,
            seed=job.seed, progress=progress)
        errors += res.errors
        where = {t: i for i, t in enumerate(texts)}
        for row in rows:
            i = where[texts_col[row]]
            cols["intensity"][row] = res.intensity[i]
            cols["low"][row] = res.low[i]
            cols["high"][row] = res.high[i]
            cols["n_windows"][row] = res.n_windows[i]
            cols["n_failures"][row] = res.n_failures[i]
            cols["beta"][row] = res.beta
            cols["vidb"][row] = pool.source if pool is not None else ""
    out = job.frame.copy()
    clash = [c for c in OUTPUT_COLUMNS if c in out.columns and c != "text"]
    out = out.rename(columns={c: f"{c}_input" for c in clash})
    for name, col in cols.items():
        out[name] = col
    out["judge"] = job.judge_name
    out["method"] = job.method
    front = [c for c in out.columns if c not in OUTPUT_COLUMNS]
    out = out[front + OUTPUT_COLUMNS]
    out.attrs["last_error"] = errors[-1] if errors else None
    out.attrs["n_errors"] = len(errors)
    return out
