"""OpinionQA group alignment, with and without a value-profile prompt.

The OpinionQA paper (Santurkar et al. 2023) asks how closely a model's answers to survey
questions match a demographic group's. For each question a model gets the group's persona
("In terms of political party, you are Democrat.", as the paper steered) and the question
with lettered options; its answer distribution is read from the log-probabilities of the
option letters when the backend returns them, else from sampled answers parsed to a
letter. Alignment with the group is 1 - W1 / (K - 1), W1 the 1-Wasserstein distance
between the two distributions over the ordered options
(:mod:`valueflow.steer._opinionqa_metrics`).

We ask the same with the group's value-profile prompt added to the persona
(:func:`valueflow.steer.profile_prompt`, from a profile of the group's own texts), and
report per group and overall the mean alignment over questions in both conditions and
their difference, each with a percentile-bootstrap 90 % interval over questions.

Every model call goes through :class:`valueflow.llm.LLMClient` with the workspace cache,
so a rerun (or a run that stopped) makes only the calls still missing; the run and its
spec are recorded in the workspace.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from valueflow.errors import ConfigError, DataError
from valueflow.steer._opinionqa_data import OpinionQAData, SurveyQuestion, persona_sentence
from valueflow.steer._opinionqa_metrics import (
    LETTERS,
    alignment,
    bootstrap_mean,
    letter_distribution,
    parse_letter,
)

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.llm import Backend, ChatRequest, ChatResult
    from valueflow.workspace import Workspace

__all__ = [
    "CONDITIONS",
    "OpinionQAResult",
    "OpinionQASettings",
    "plot_opinionqa",
    "question_messages",
    "study_opinionqa",
    "summarise",
]

RUN_KIND = "opinionqa"

#: The conditions of the study: the persona alone, and the persona with the profile prompt.
CONDITIONS: tuple[str, ...] = ("persona", "profile")

_ANSWER_INSTRUCTION = "Reply with the letter of one option only."


class OpinionQASettings(BaseModel):
    """How the model is asked and how the results are summarised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["auto", "logprobs", "samples"] = "auto"
    """``logprobs``: the probabilities of the option letters as the first answer token;
    ``samples``: ``samples`` answers parsed to a letter; ``auto``: log-probabilities when
    the first question gets usable ones, else samples (and samples for any question whose
    log-probabilities hold no option letter)."""
    samples: int = Field(default=10, ge=1)
    """Answers per question and condition when sampling."""
    temperature: float = Field(default=1.0, ge=0.0)
    """Sampling temperature (log-probabilities are read greedily, at 0)."""
    max_tokens: int = Field(default=16, ge=1)
    """Tokens per sampled answer."""
    top_logprobs: int = Field(default=20, ge=1, le=20)
    """Alternatives asked for the first token (20 is the OpenAI API's maximum)."""
    questions: int | None = Field(default=None, ge=1)
    """Use at most this many questions (a seeded choice among those every group has)."""
    seed: int = 0
    """Seeds the choice of questions, the sampling and the bootstrap."""
    n_boot: int = Field(default=1000, ge=100)
    """Bootstrap resamples of the questions."""


@dataclass
class OpinionQAResult:
    """What :func:`study_opinionqa` returns.

    Attributes:
        alignment: One row per group (and ``overall``) and condition (``persona``,
            ``profile``, ``difference``): ``group, condition, n_questions, alignment, low,
            high, note``. The primary metric is ``alignment`` of the ``difference`` rows.
        per_question: One row per group, condition and question, with both distributions.
        method: How answers were read (``logprobs``, ``samples`` or ``mixed``).
        notes: What was left out, one line each.
        run_id: The run in the workspace (``None`` without one).
        failed: Model calls without a usable answer; ``last_error`` says why.
    """

    alignment: pd.DataFrame
    per_question: pd.DataFrame
    method: str
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None
    failed: int = 0
    last_error: str | None = None


# -- prompts ---------------------------------------------------------------------------------
def question_messages(question: SurveyQuestion, group: str,
                      profile: str | None = None) -> list[dict[str, str]]:
    """The chat messages for one question: the persona (and the profile prompt) as the
    system message, the question and its lettered options as the user message."""
    if len(question.options) > len(LETTERS):
        raise DataError(f"question {question.id} has {len(question.options)} options; at "
                        f"most {len(LETTERS)} can be lettered")
    system = persona_sentence(group)
    if profile:
        system = f"{system}\n\n{profile}"
    lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(question.options))
    user = f"Question: {question.text}\n\n{lines}\n\n{_ANSWER_INSTRUCTION}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass
class _Item:
    group: str
    condition: str
    question: SurveyQuestion
    messages: list[dict[str, str]]
    human: np.ndarray
    method: str = ""
    model: np.ndarray | None = None
    n_answers: int = 0
    error: str | None = None


def _logprob_request(item: _Item, s: OpinionQASettings) -> ChatRequest:
    from valueflow.llm import ChatRequest

    return ChatRequest(messages=item.messages, max_tokens=1, temperature=0.0, logprobs=True,
                       top_logprobs=s.top_logprobs)


def _sample_requests(item: _Item, s: OpinionQASettings) -> list[ChatRequest]:
    from valueflow.llm import ChatRequest

    return [ChatRequest(messages=item.messages, max_tokens=s.max_tokens,
                        temperature=s.temperature, seed=s.seed + i, sample_index=i)
            for i in range(s.samples)]


def _from_logprobs(item: _Item, res: ChatResult) -> bool:
    """Read the item's distribution from a log-probability result; False if it has none."""
    if not res.ok:
        item.error = res.error
        return False
    first = (res.logprobs or [{}])[0] if res.logprobs else {}
    dist = letter_distribution(first.get("top") or {}, len(item.question.options))
    if dist is None:
        item.error = "no option letter among the first token's log-probabilities"
        return False
    item.model, item.method, item.n_answers, item.error = dist, "logprobs", 1, None
    return True


def _from_samples(item: _Item, results: Sequence[ChatResult]) -> None:
    k = len(item.question.options)
    counts = np.zeros(k)
    errors = [r.error for r in results if not r.ok]
    for r in results:
        if r.ok:
            i = parse_letter(r.text, item.question.options)
            if i is not None:
                counts[i] += 1
    item.method, item.n_answers = "samples", int(counts.sum())
    if counts.sum() > 0:
        item.model, item.error = counts / counts.sum(), None
    elif errors:
        item.error = errors[-1]
    else:
        item.error = f"none of {len(results)} answers named an option"


# -- the study -------------------------------------------------------------------------------
def _choose_questions(data: OpinionQAData, human: Mapping[str, Mapping[str, np.ndarray]],
                      s: OpinionQASettings) -> list[str]:
    common = set(data.questions)
    for dists in human.values():
        common &= set(dists)
    ids = sorted(common)
    if not ids:
        raise DataError(f"no question of {data.source} has answers from every group studied "
                        f"({', '.join(human)})", hint="study fewer or other groups")
    if s.questions is not None and s.questions < len(ids):
        pick = np.random.default_rng(s.seed).permutation(len(ids))[:s.questions]
        ids = [ids[i] for i in sorted(pick)]
    return ids


def study_opinionqa(
    data: OpinionQAData,
    groups: Sequence[str],
    backend: Backend | str,
    *,
    profiles: Mapping[str, str] | None = None,
    settings: OpinionQASettings | None = None,
    workspace: Workspace | None = None,
    max_concurrency: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> OpinionQAResult:
    """Group alignment of a model on OpinionQA questions, with and without profile prompts.

    Args:
        data: From :func:`load_opinionqa`.
        groups: Groups ``CATEGORY=label`` (each must be in ``data``).
        backend: The model (a backend or a spec for :func:`valueflow.llm.get_backend`).
        profiles: Group → profile prompt; groups without one run the persona alone.
        settings: See :class:`OpinionQASettings`.
        workspace: Caches every model call and records the run; a rerun makes only the
            calls still missing.
        max_concurrency: Model calls in flight (default: the backend's).
        progress: Show a progress bar on a terminal.
        echo: Receives one line per stage.

    Returns:
        An :class:`OpinionQAResult`.

    Raises:
        DataError: a group not in the data, no question every group answered.
        RunFailedError: the backend cannot be reached, or no call gave a usable answer.
    """
    import pandas as pd

    from valueflow.errors import BackendError, RunFailedError
    from valueflow.llm import LLMClient, get_backend, run_sync
    from valueflow.llm._types import canonical_json

    s = settings or OpinionQASettings()
    profiles = dict(profiles or {})
    say = echo or (lambda _m: None)
    groups = list(dict.fromkeys(groups))
    if not groups:
        raise ConfigError("the study needs at least one group")
    data.check_groups(groups)
    stray = sorted(set(profiles) - set(groups))
    if stray:
        raise ConfigError(f"a profile is given for {stray[0]!r}, which is not a group of "
                          "this study")
    human = {g: data.distributions(g) for g in groups}
    qids = _choose_questions(data, human, s)
    items = [
        _Item(g, cond, data.questions[q],
              question_messages(data.questions[q], g, profiles[g] if cond == "profile"
                                else None), human[g][q])
        for g in groups for cond in CONDITIONS if cond == "persona" or g in profiles
        for q in qids]
    be = get_backend(backend) if isinstance(backend, str) else backend
    spec = {"backend": be.spec, "identity": be.cache_identity(), "data": data.source,
            "groups": groups, "questions": qids, "settings": s.model_dump(),
            "profiles": {g: hashlib.sha256(p.encode()).hexdigest()[:12]
                         for g, p in sorted(profiles.items())}}
    run_id = f"{RUN_KIND}-{hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:10]}"
    if workspace is not None:
        workspace.start_run(RUN_KIND, spec, run_id=run_id)
    say(f"{len(groups)} group(s), {len(qids)} question(s), {len(items)} prompts for {be.spec}")

    async def ask(client: LLMClient) -> str:
        method = s.method
        if method == "auto":
            probe = await client.generate([_logprob_request(items[0], s)], progress=False)
            method = "logprobs" if _from_logprobs(items[0], probe[0]) else "samples"
            say(f"answers read from {'log-probabilities' if method == 'logprobs' else 'samples'}"
                " (the first question's log-probabilities "
                + ("hold the option letters)" if method == "logprobs" else "do not)"))
        todo = items
        if method == "logprobs":
            res = await client.generate([_logprob_request(it, s) for it in items],
                                        progress=progress)
            todo = [it for it, r in zip(items, res, strict=True) if not _from_logprobs(it, r)]
            if s.method == "logprobs" or not todo:
                return method
            say(f"{len(todo)} prompt(s) without option letters in their log-probabilities: "
                "sampled instead")
        reqs = [r for it in todo for r in _sample_requests(it, s)]
        res = await client.generate(reqs, progress=progress)
        for n, it in enumerate(todo):
            _from_samples(it, res[n * s.samples:(n + 1) * s.samples])
        return method if todo is items else "mixed"

    status = "failed"
    try:
        with LLMClient(be, workspace, run_id=run_id if workspace is not None else None,
                       max_concurrency=max_concurrency) as client:
            method = run_sync(ask(client))
        failed = sum(it.model is None for it in items)
        status = "done" if failed == 0 else "partial" if failed < len(items) else "failed"
    except BackendError as exc:
        raise RunFailedError(f"the OpinionQA study stopped: {exc.message}",
                             hint=exc.hint or "answers so far are cached; run the same "
                             "command again to resume", run_id=run_id) from exc
    except BaseException:
        status = "interrupted"
        raise
    finally:
        if workspace is not None:
            workspace.finish_run(run_id, status)
    last_error = next((it.error for it in reversed(items) if it.model is None), None)
    if failed == len(items):
        raise RunFailedError(f"no prompt got a usable answer ({failed} of {len(items)}; "
                             f"nothing written); last error: {last_error}",
                             hint="check the model and server; answers that worked are "
                             "cached", run_id=run_id)
    rows = []
    for it in items:
        q = it.question
        score = (alignment(it.model, it.human, q.positions) if it.model is not None
                 else math.nan)
        rows.append({"group": it.group, "condition": it.condition, "question_id": q.id,
                     "survey": q.survey, "question": q.text, "n_options": len(q.options),
                     "method": it.method, "n_answers": it.n_answers,
                     "model_distribution": _dist_json(it.model),
                     "human_distribution": _dist_json(it.human), "alignment": score,
                     "error": it.error or ""})
    per_question = pd.DataFrame(rows)
    table = summarise(per_question, groups, set(profiles), n_boot=s.n_boot, seed=s.seed)
    notes = list(data.notes)
    if failed:
        notes.append(f"{failed} of {len(items)} prompts got no usable answer and are left "
                     f"out of the means (last error: {last_error})")
    return OpinionQAResult(table, per_question, method, notes, run_id, failed, last_error)


def _dist_json(d: np.ndarray | None) -> str:
    return "" if d is None else json.dumps([round(float(x), 6) for x in d])


def summarise(per_question: pd.DataFrame, groups: Sequence[str], with_profile: set[str], *,
              n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The alignment table from per-question alignments: per group and ``overall``, the
    mean over questions of each condition and of the paired difference (profile minus
    persona), each with a percentile-bootstrap 90 % interval over questions.

    ``overall`` averages the groups' alignments per question first (the difference over the
    groups with a profile only), then takes the mean over questions.
    """
    import pandas as pd

    wide = per_question.pivot_table(index="question_id", columns=["group", "condition"],
                                    values="alignment", aggfunc="first", dropna=False)

    def col(g: str, c: str) -> pd.Series:
        return wide[(g, c)] if (g, c) in wide.columns else pd.Series(np.nan, index=wide.index)

    rows = []

    def add(group: str, cond: str, values: pd.Series, note: str = "") -> None:
        v = values.to_numpy(dtype=float)
        mean, lo, hi = bootstrap_mean(v, n_boot=n_boot, seed=seed)
        rows.append({"group": group, "condition": cond, "n_questions": int(np.isfinite(v).sum()),
                     "alignment": mean, "low": lo, "high": hi, "note": note})

    for g in groups:
        if g not in with_profile:
            add(g, "persona", col(g, "persona"), "no profile file: persona only")
            continue
        add(g, "persona", col(g, "persona"))
        add(g, "profile", col(g, "profile"))
        add(g, "difference", col(g, "profile") - col(g, "persona"))
    if len(groups) > 1:
        add("overall", "persona", pd.concat([col(g, "persona") for g in groups], axis=1)
            .mean(axis=1))
        prof = [g for g in groups if g in with_profile]
        if prof:
            add("overall", "profile", pd.concat([col(g, "profile") for g in prof], axis=1)
                .mean(axis=1), f"{len(prof)} group(s) with a profile")
            add("overall", "difference",
                pd.concat([col(g, "profile") - col(g, "persona") for g in prof], axis=1)
                .mean(axis=1), f"{len(prof)} group(s) with a profile")
    return pd.DataFrame(rows, columns=["group", "condition", "n_questions", "alignment", "low",
                                       "high", "note"])


def plot_opinionqa(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Bar chart of group alignment, persona alone beside persona with profile, per group
    (and overall), with the 90 % bootstrap intervals as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from valueflow.tables import atomic_output

    groups = list(dict.fromkeys(table["group"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(groups) + 2), 4))
    x = np.arange(len(groups))
    colours = {"persona": "#8a94a6", "profile": "#2b6cb0"}
    labels = {"persona": "persona only", "profile": "persona + profile prompt"}
    for j, cond in enumerate(CONDITIONS):
        sub = table[table["condition"] == cond].set_index("group")
        have = [g for g in groups if g in sub.index]
        if not have:
            continue
        pos = np.array([x[groups.index(g)] for g in have]) + (j - 0.5) * 0.38
        mean = sub.loc[have, "alignment"].to_numpy(dtype=float)
        err = np.vstack([mean - sub.loc[have, "low"].to_numpy(dtype=float),
                         sub.loc[have, "high"].to_numpy(dtype=float) - mean])
        ax.bar(pos, mean, width=0.38, color=colours[cond], label=labels[cond],
               yerr=np.nan_to_num(err), capsize=3)
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("alignment 1 - W1/(K-1)\n(90% bootstrap interval)")
    lows = table.loc[table["condition"].isin(CONDITIONS), "low"].to_numpy(dtype=float)
    floor = float(np.nanmin(lows)) if np.isfinite(lows).any() else 0.0
    ax.set_ylim(max(0.0, floor - 0.05), 1.0)
    ax.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle("OpinionQA group alignment", fontsize=11)
    fig.tight_layout()
    out = Path(path)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return out
