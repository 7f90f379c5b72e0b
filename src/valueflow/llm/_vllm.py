"""``vllm/<model>``: vLLM's offline engine, for GPU machines.

The whole batch goes to ``LLM.chat`` in one call, so vLLM's continuous batching sees every
request at once. Structured output uses vLLM's guided decoding. A chat template without a
system role gets the system text merged into the first user message.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import Sequence
from typing import Any

from valueflow.errors import BackendError
from valueflow.llm._messages import merge_system, template_supports_system
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage, request_seed

__all__ = ["VLLMBackend"]


class VLLMBackend(Backend):
    """A model run by vLLM's offline ``LLM`` engine.

    Args:
        model: A Hugging Face model id or a local folder (as vLLM accepts it).
        batch_size: Requests handed to vLLM per call (it schedules them itself).
        **engine_kwargs: Passed to ``vllm.LLM`` (``tensor_parallel_size``,
            ``max_model_len``, ``gpu_memory_utilization``, ``dtype`` ...).
    """

    kind = "vllm"

    def __init__(self, model: str, *, batch_size: int = 1024, **engine_kwargs: Any) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise BackendError("the vllm backend needs vLLM (on a GPU machine)",
                               hint="pip install 'valueflow[vllm]'")
        self.model = model
        self.batch_size = max(1, batch_size)
        self.max_concurrency = self.batch_size
        self.engine_kwargs = engine_kwargs
        self.supports_json_schema = True
        self._llm: Any = None
        self._lock = threading.Lock()
        self._system_ok: bool | None = None

    def cache_identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"model": self.model}
        for k in ("dtype", "quantization", "revision", "max_model_len"):
            if k in self.engine_kwargs:
                ident[k] = self.engine_kwargs[k]
        return ident

    @property
    def engine(self) -> Any:
        """The ``vllm.LLM`` instance (created on first use)."""
        if self._llm is None:
            from vllm import LLM

            self._llm = LLM(model=self.model, **self.engine_kwargs)
        return self._llm

    def _params(self, r: ChatRequest) -> Any:
        from vllm import SamplingParams

        kw: dict[str, Any] = {
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
            "seed": request_seed(r) if r.temperature > 0 else None,
            "stop": list(r.stop) if r.stop else None,
        }
        if r.top_p is not None:
            kw["top_p"] = r.top_p
        if r.logprobs:
            kw["logprobs"] = max(1, r.top_logprobs or 1)
        if r.json_schema is not None:
            kw.update(_guided(dict(r.json_schema)))
        if r.extra:
            kw.update(r.extra)
        return SamplingParams(**kw)

    def _supports_system(self) -> bool:
        if self._system_ok is None:
            tok = self.engine.get_tokenizer()
            self._system_ok = template_supports_system(
                lambda m: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True))
        return self._system_ok

    def _run(self, batch: Sequence[ChatRequest]) -> list[ChatResult]:
        t0 = time.perf_counter()
        with self._lock:
            merge = not self._supports_system()
            convs = [merge_system(r.messages) if merge else [dict(m) for m in r.messages]
                     for r in batch]
            outs = self.engine.chat(convs,
                                    sampling_params=[self._params(r) for r in batch],
                                    use_tqdm=False)
        latency = time.perf_counter() - t0
        results = []
        for r, out in zip(batch, outs, strict=True):
            comp = out.outputs[0]
            lp = None
            if r.logprobs and comp.logprobs:
                lp = []
                for tid, step in zip(comp.token_ids, comp.logprobs, strict=False):
                    chosen = step.get(tid)
                    lp.append({
                        "token": getattr(chosen, "decoded_token", None),
                        "logprob": getattr(chosen, "logprob", None),
                        "top": {v.decoded_token: v.logprob for v in step.values()},
                    })
            results.append(ChatResult(
                text=comp.text,
                usage=Usage(len(out.prompt_token_ids or []), len(comp.token_ids)),
                logprobs=lp, finish_reason=comp.finish_reason, latency_s=latency))
        return results

    async def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        if not requests:
            return []
        return await asyncio.to_thread(self._run, list(requests))


def _guided(schema: dict[str, Any]) -> dict[str, Any]:
    """Structured-output parameters for the installed vLLM (the API was renamed in 0.10)."""
    try:
        from vllm.sampling_params import StructuredOutputsParams  # type: ignore[attr-defined]

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
