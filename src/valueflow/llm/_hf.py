"""``hf/<folder or gguf file>``: generation with transformers.

This is the backend activation steering builds on: :attr:`HFBackend.hf_model` and
:attr:`HFBackend.tokenizer` expose the loaded objects so hooks can be attached. Requests
are batched (left padding) when their generation settings agree; the model's chat
template formats each conversation.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from valueflow.errors import BackendError, ConfigError
from valueflow.llm._messages import merge_system, template_supports_system
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage, request_seed

__all__ = ["HFBackend"]

_INSTALL_HINT = "pip install 'valueflow[hf]'"


class HFBackend(Backend):
    """A causal LM loaded with transformers, on CPU or GPU.

    Args:
        model: A local model folder, or a ``.gguf`` file (de-quantised on load; needs the
            ``gguf`` package). ``smollm2`` names the bundled SmolLM2 GGUF file.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ... (default: cuda when available).
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"`` (default:
            bfloat16 on GPU, float32 on CPU).
        batch_size: Requests generated together.
        trust_remote_code: Allow model code shipped with the weights.

    Sampled outputs (temperature > 0) are seeded per batch, so they are reproducible for
    the same batch composition; greedy outputs do not depend on batching.
    """

    kind = "hf"

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        trust_remote_code: bool = False,
    ) -> None:
        for dep in ("torch", "transformers"):
            if importlib.util.find_spec(dep) is None:
                raise BackendError(f"the hf backend needs {dep}", hint=_INSTALL_HINT)
        self.model = model
        if model.lower() == "smollm2":
            from valueflow.llm._llamacpp import resolve_gguf

            self.path = resolve_gguf(model)
        else:
            self.path = Path(model).expanduser().resolve()
            if not self.path.exists():
                raise ConfigError(f"no model folder or GGUF file at {model!r}",
                                  hint="hf/ takes a local folder (config.json, weights) or "
                                  "a .gguf file; nothing is downloaded")
        self.gguf = self.path.suffix == ".gguf"
        if self.gguf and importlib.util.find_spec("gguf") is None:
            raise BackendError("reading GGUF files with transformers needs gguf",
                               hint=_INSTALL_HINT)
        self.device = device
        self.dtype = dtype
        self.batch_size = max(1, batch_size)
        self.max_concurrency = self.batch_size
        self.trust_remote_code = trust_remote_code
        self._model: Any = None
        self._tok: Any = None
        self._system_ok = True
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._vectors: dict[str, Any] = {}

    def cache_identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"model": self.path.name, "dtype": self.dtype or "default"}
        if self.gguf:
            ident["bytes"] = self.path.stat().st_size
        return ident

    # -- loading ----------------------------------------------------------------------
    def load(self) -> None:
        """Load the tokenizer and weights now (otherwise on first use)."""
        with self._load_lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype_name = self.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
            dtype = "auto" if dtype_name == "auto" else getattr(torch, dtype_name)
            folder = self.path.parent if self.gguf else self.path
            kw: dict[str, Any] = {"gguf_file": self.path.name} if self.gguf else {}
            try:
                tok = AutoTokenizer.from_pretrained(
                    folder, trust_remote_code=self.trust_remote_code, **kw)
                # transformers renamed torch_dtype to dtype in 4.56.
                kw[_dtype_arg()] = dtype
                model: Any = AutoModelForCausalLM.from_pretrained(
                    folder, trust_remote_code=self.trust_remote_code, **kw)
            except Exception as exc:
                raise BackendError(f"transformers could not load {self.path}: {exc}") from exc
            model.to(device)
            model.eval()
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            if tok.chat_template is None:
                raise BackendError(f"{self.path} has no chat template",
                                   hint="use an instruction-tuned model with a chat template")
            self._system_ok = template_supports_system(
                lambda m: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True))
            self._device = device
            self._tok, self._model = tok, model

    @property
    def hf_model(self) -> Any:
        """The loaded ``PreTrainedModel`` (for activation hooks)."""
        self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer."""
        self.load()
        return self._tok

    # -- activation steering ---------------------------------------------------------
    def add_vector(self, vector: Any) -> str:
        """Make a :class:`~valueflow.steer.SteeringVector` usable by requests; returns its
        digest. A request is steered by ``extra={"steering": [[digest, coefficient], ...]}``
        (the digest and coefficient are part of the request, so of its cache key)."""
        from valueflow.steer._activation import check_vector, decoder_layers, model_identity

        self.load()
        check_vector(vector, len(decoder_layers(self._model)),
                     int(getattr(self._model.config, "hidden_size", 0) or 0),
                     model_identity(self))
        self._vectors[vector.digest] = vector
        return str(vector.digest)

    def _steering_rows(self, batch: Sequence[ChatRequest]) -> list[list[tuple[Any, float]]]:
        rows = []
        for r in batch:
            spec = (r.extra or {}).get("steering") or []
            row = []
            for digest, coef in spec:
                vec = self._vectors.get(str(digest))
                if vec is None:
                    raise ConfigError(f"request steered by an unknown vector {digest!r}",
                                      hint="register it first with backend.add_vector(vector)")
                row.append((vec, float(coef)))
            rows.append(row)
        return rows

    def count_tokens(self, text: str) -> int | None:
        return None if self._tok is None else len(self._tok.encode(text, add_special_tokens=False))

    def format(self, request: ChatRequest) -> str:
        """The prompt string the chat template makes of ``request``."""
        self.load()
        messages = [dict(m) for m in request.messages]
        if not self._system_ok:
            messages = merge_system(messages)
        return str(self._tok.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True))

    # -- generation -------------------------------------------------------------------
    def _run_batch(self, batch: Sequence[ChatRequest]) -> list[ChatResult]:
        import torch

        self.load()
        tok, model = self._tok, self._model
        first = batch[0]
        prompts = [self.format(r) for r in batch]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self._device) for k, v in enc.items()}
        sample = first.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(r.max_tokens for r in batch),
            "do_sample": sample,
            "pad_token_id": tok.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": any(r.logprobs for r in batch),
        }
        if sample:
            kwargs["temperature"] = first.temperature
            if first.top_p is not None:
                kwargs["top_p"] = first.top_p
        else:  # silence "temperature is set but do_sample=False" from generation configs
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if first.stop:
            kwargs["stop_strings"] = list(first.stop)
            kwargs["tokenizer"] = tok
        from valueflow.steer._activation import add_to_layers, steering_additions

        additions = steering_additions(self._steering_rows(batch))
        t0 = time.perf_counter()
        with self._run_lock, torch.no_grad(), add_to_layers(model, additions):
            if sample:
                torch.manual_seed(request_seed(first))
            out = model.generate(**enc, **kwargs)
        latency = time.perf_counter() - t0
        n_in = enc["input_ids"].shape[1]
        results = []
        for i, r in enumerate(batch):
            ids = out.sequences[i, n_in:n_in + r.max_tokens].tolist()
            eos = {tok.eos_token_id, tok.pad_token_id}
            n_gen = next((j for j, t in enumerate(ids) if t in eos), len(ids))
            text = tok.decode(ids[:n_gen], skip_special_tokens=True)
            finish = "stop" if n_gen < len(ids) else "length"
            if r.stop:
                cut = [text.find(s) for s in r.stop if s in text]
                if cut:
                    text, finish = text[:min(cut)], "stop"
            lp = _logprobs(out.logits, i, ids[:n_gen], tok, r.top_logprobs) if r.logprobs else None
            prompt_len = int(enc["attention_mask"][i].sum())
            results.append(ChatResult(text=text, usage=Usage(prompt_len, n_gen), logprobs=lp,
                                      finish_reason=finish, latency_s=latency))
        return results

    async def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        bad = [i for i, r in enumerate(requests) if r.json_schema is not None]
        results: list[ChatResult | None] = [None] * len(requests)
        for i in bad:
            results[i] = ChatResult.failure(
                "the hf backend does not constrain output to a JSON schema; use llamacpp/, "
                "vllm/ or an openai/ server for structured output")
        # Batch requests whose generation settings agree; each group keeps input order.
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            if results[i] is None:
                key = (r.temperature, r.top_p, tuple(r.stop or ()),
                       r.seed if r.temperature > 0 else None)
                groups.setdefault(key, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                part = idx[start:start + self.batch_size]
                outs = await asyncio.to_thread(self._run_batch, [requests[i] for i in part])
                for i, res in zip(part, outs, strict=True):
                    results[i] = res
        return [r for r in results if r is not None]


def _dtype_arg() -> str:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _logprobs(logits: Any, row: int, ids: list[int], tok: Any, top: int | None
              ) -> list[dict[str, Any]]:
    import torch

    items = []
    for step, token_id in enumerate(ids):
        lp = torch.log_softmax(logits[step][row].float(), dim=-1)
        entry: dict[str, Any] = {"token": tok.decode([token_id]),
                                 "logprob": float(lp[token_id]), "top": {}}
        if top:
            vals, idx = lp.topk(top)
            entry["top"] = {tok.decode([int(j)]): float(v)
                            for v, j in zip(vals.tolist(), idx.tolist(), strict=True)}
        items.append(entry)
    return items
