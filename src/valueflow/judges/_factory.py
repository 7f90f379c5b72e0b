"""``make_judge``: a judge from a spec string (``local``, ``sim``, or an LLM backend spec)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from valueflow.errors import ConfigError

if TYPE_CHECKING:
    from valueflow.judges._sim import Truth
    from valueflow.workspace import Workspace

__all__ = ["LOCAL_SCORER_FACTORY", "Method", "judge_from_options", "make_judge"]

Method = Literal["ranking", "rating"]

LOCAL_SCORER_FACTORY = "valueflow.embed:load_local_scorer"
"""Where the embedded local intensity scorer lives; resolved only when ``local`` is used."""

_OTHER_JUDGES = ("sim (simulated, for planning: needs a truth table)",
                 "an LLM backend spec such as openai/<model>, llamacpp/<path.gguf>, "
                 "vllm/<model> or hf/<path>")


def _local_scorer_factory() -> Any:
    """The local scorer's loader, ``valueflow.embed.load_local_scorer`` (resolved by name:
    ``judges`` sits left of ``embed`` and does not import it).

    Raises:
        ConfigError: the scorer cannot be imported (the ``embed`` part or its extra is
            missing); the message says which judges are available instead.
    """
    module_name, _, attr = LOCAL_SCORER_FACTORY.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        missing_dep = isinstance(exc, ImportError) and not str(getattr(exc, "name", "")
                                                               ).startswith("valueflow")
        raise ConfigError(
            f"the local intensity scorer is not available ({LOCAL_SCORER_FACTORY} cannot be "
            f"loaded: {exc})",
            hint=("install the embed extra (pip install 'valueflow[embed]'), or choose "
                  if missing_dep else "this installation does not include it yet; choose ")
            + "another judge with --judge: " + "; ".join(_OTHER_JUDGES),
        ) from exc
    return factory


def make_judge(
    spec: str,
    *,
    method: Method = "ranking",
    workspace: Workspace | None = None,
    truth: Truth | None = None,
    beta: float = 1.0,
    noise_sd: float = 2.0,
    seed: int = 0,
    paraphrase: int = 0,
    structured: bool | None = None,
    cache: bool = True,
    max_concurrency: int | None = None,
    backend_options: Mapping[str, Any] | None = None,
    local_path: str | None = None,
    local_vidb: Any = None,
    local_values: list[str] | None = None,
    client: Any = None,
) -> Any:
    """Build a judge from a spec.

    Args:
        spec: ``"local"`` (the embedded scorer, a DirectScorer), ``"sim"`` (a simulated
            judge over ``truth``) or an LLM backend spec (``openai/gpt-4o-mini``,
            ``llamacpp/smollm2``, ``vllm/...``, ``hf/...``, ``scripted``).
        method: ``"ranking"`` (a RankingJudge) or ``"rating"`` (a RatingJudge, the
            baseline). Ignored by ``local``, which predicts intensities directly.
        workspace: Where LLM calls are cached (resumable runs).
        truth: For ``sim``: ``{text: intensity}`` or ``fn(value_id, text)``.
        beta: For ``sim`` ranking: judge sharpness.
        noise_sd: For ``sim`` rating: noise of each rating.
        seed: For ``sim``: noise seed; for LLM judges: display-order seed.
        paraphrase: Which prompt wording an LLM judge uses.
        structured: Force JSON-schema output on or off (default: when the backend has it).
        cache: Cache LLM calls in the workspace.
        max_concurrency: Requests in flight (default: the backend's).
        backend_options: Passed to :func:`valueflow.llm.get_backend` (``base_url=`` ...).
        local_path: For ``local``: a judge folder other than the shipped one.
        local_vidb: For ``local``: refit the heads of this VIDB's values on its texts (a
            frame or a source such as ``"workspace"``); see
            :func:`valueflow.embed.load_local_scorer`.
        local_values: For ``local`` with ``local_vidb``: the values that will be scored.
        client: An existing LLM client to use instead of building one from ``spec``.
    """
    if method not in ("ranking", "rating"):
        raise ConfigError(f"method must be 'ranking' or 'rating', not {method!r}")
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("a judge spec is required",
                          hint="local, sim, or an LLM backend spec such as openai/gpt-4o-mini")
    spec = spec.strip()
    if spec == "local":
        if method == "rating":
            raise ConfigError("the local judge cannot rate texts (it predicts intensities "
                              "directly; --method does not apply to it)",
                              hint="drop --method rating, or use an LLM judge to rate")
        load = _local_scorer_factory()
        refit: dict[str, Any] = {k: v for k, v in (("vidb", local_vidb),
                                                   ("values", local_values)) if v is not None}
        return load(local_path, **refit) if local_path else load(**refit)
    if spec == "sim" or spec.startswith("sim/"):
        from valueflow.judges._sim import SimulatedRatingJudge, SimulatedTextJudge

        if truth is None:
            raise ConfigError("the simulated judge needs latent intensities",
                              hint="pass --sim-truth FILE with text,intensity columns")
        if method == "rating":
            return SimulatedRatingJudge(truth, noise_sd=noise_sd, seed=seed)
        return SimulatedTextJudge(truth, beta=beta, seed=seed)
    from valueflow.judges._llm import LLMRankingJudge, LLMRatingJudge

    if client is None:
        from valueflow.llm import LLMClient, get_backend

        opts = dict(backend_options or {})
        if max_concurrency is not None and spec.startswith("openai/"):
            # The backend's bound is the hard limit: a client asking for more than its
            # default of 32 per endpoint would otherwise never get it.
            opts.setdefault("max_concurrency", max_concurrency)
        backend = get_backend(spec, **opts)
        kwargs: dict[str, Any] = {"workspace": workspace, "cache": cache}
        if max_concurrency is not None:
            kwargs["max_concurrency"] = max_concurrency
        client = LLMClient(backend, **kwargs)
    if method == "rating":
        return LLMRatingJudge(client, paraphrase=paraphrase, structured=structured)
    return LLMRankingJudge(client, paraphrase=paraphrase, structured=structured, seed=seed)


_JUDGE_OPTIONS = ("method", "truth", "beta", "noise_sd", "seed", "paraphrase", "structured",
                  "cache", "max_concurrency", "backend_options", "local_path", "local_vidb",
                  "local_values")


def judge_from_options(spec: str, options: Mapping[str, Any] | None = None, *,
                       workspace: Workspace | None = None, **fixed: Any) -> Any:
    """A judge from a spec and one flat mapping of options, as a config file gives them.

    ``judge: {spec: openai/<model>, options: {base_url: ..., api_key_env: ...,
    max_concurrency: 16, paraphrase: 1}}``: options :func:`make_judge` takes go to it;
    the others go to the LLM backend (``base_url``, ``api_key_env``, ``timeout`` ...),
    where one it does not take is a one-line :class:`ConfigError`.

    Args:
        spec: As for :func:`make_judge`.
        options: The flat options.
        workspace: Where LLM calls are cached.
        **fixed: Further :func:`make_judge` arguments (they win over ``options``).
    """
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"judge options must be a mapping, not {type(options).__name__}",
                          hint="e.g. options: {base_url: http://localhost:8000/v1}")
    opts = dict(options or {})
    judge_kw = {k: opts.pop(k) for k in list(opts) if k in _JUDGE_OPTIONS}
    backend_kw = dict(judge_kw.pop("backend_options", None) or {})
    name = spec.strip() if isinstance(spec, str) else spec
    if opts:
        if name in ("local", "sim") or (isinstance(name, str) and name.startswith("sim/")):
            from valueflow.errors import close_matches

            bad = sorted(opts)[0]
            near = close_matches(bad, _JUDGE_OPTIONS)
            raise ConfigError(f"judge {name!r} does not take the option {bad!r}",
                              hint=(f"did you mean {near[0]!r}? " if near else "")
                              + "backend options such as base_url are for LLM judges")
        backend_kw.update(opts)
    judge_kw.update(fixed)
    return make_judge(spec, workspace=workspace, backend_options=backend_kw or None,
                      **judge_kw)
