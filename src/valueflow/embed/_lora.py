"""Low-rank adapters (LoRA) for the linear layers of a BERT-style encoder, in plain torch.

Training wraps each target ``nn.Linear`` in a :class:`LoRALinear` (the base weight frozen, a
rank-``r`` update ``B @ A`` learned). What ships is only ``A`` and ``B`` per layer (float16,
about 1 MB for the bundled MiniLM at rank 8); loading merges ``W += scale * B @ A`` into the
base weights once, so an adapted encoder runs exactly as fast as the base.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["TARGETS", "LoRALinear", "add_lora", "load_adapter", "lora_state", "merge_adapter",
           "save_adapter"]

#: Suffixes of the linear layers adapted in each transformer block (BERT naming).
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")


class LoRALinear(nn.Module):
    """``base(x) + scale * dropout(x) @ A.T @ B.T`` with ``base`` frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.A.T @ self.B.T) * self.scale


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    for a, b in itertools.pairwise(parts):
        if a == "layer" and b.isdigit():
            return int(b)
    return None


def _targets(model: nn.Module, layers: Sequence[int] | None = None
             ) -> list[tuple[str, nn.Linear]]:
    found = [(name, mod) for name, mod in model.named_modules()
             if isinstance(mod, nn.Linear) and name.endswith(TARGETS)
             and _layer_index(name) is not None
             and (layers is None or _layer_index(name) in layers)]
    # "output.dense" also matches "attention.output.dense": keep each module once
    seen: set[str] = set()
    out = []
    for name, mod in found:
        if name not in seen:
            seen.add(name)
            out.append((name, mod))
    return out


def add_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0, dropout: float = 0.05,
             layers: Sequence[int] | None = None) -> list[str]:
    """Replace the target linear layers of ``model`` (of the transformer blocks ``layers``,
    default all) by LoRA-wrapped ones; freeze everything else.

    Returns the names of the adapted layers.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    names = []
    for name, lin in _targets(model, layers):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(lin, rank, alpha, dropout))
        names.append(name)
    return names


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer.A, layer.B}`` tensors of every LoRA layer of ``model`` (scale folded into B)."""
    out: dict[str, torch.Tensor] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, LoRALinear):
            out[f"{name}.A"] = mod.A.detach().cpu().contiguous()
            out[f"{name}.B"] = (mod.B.detach() * mod.scale).cpu().contiguous()
    return out


def save_adapter(state: dict[str, torch.Tensor], path: str | Path,
                 metadata: dict[str, str] | None = None) -> None:
    """Write adapter tensors (float16) to a safetensors file."""
    from safetensors.torch import save_file

    save_file({k: v.to(torch.float16) for k, v in state.items()}, str(path),
              metadata=metadata or {})


def load_adapter(path: str | Path) -> dict[str, torch.Tensor]:
    """Adapter tensors from a safetensors file (float32)."""
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(path)).items()}


def load_lora_state(model: nn.Module, state: dict[str, Any]) -> int:
    """Set the LoRA layers of ``model`` to a saved adapter (the inverse of :func:`lora_state`:
    ``B`` was saved with the scale folded in). Returns the number of layers set; every LoRA
    layer of ``model`` must be in ``state`` with the same rank and shapes."""
    n = 0
    with torch.no_grad():
        for name, mod in model.named_modules():
            if not isinstance(mod, LoRALinear):
                continue
            a, b = state.get(f"{name}.A"), state.get(f"{name}.B")
            if a is None or b is None:
                raise ValueError(f"the adapter has no layer {name!r} (trained on other blocks?)")
            if tuple(a.shape) != tuple(mod.A.shape) or tuple(b.shape) != tuple(mod.B.shape):
                raise ValueError(f"adapter layer {name!r} has rank {a.shape[0]}, this model "
                                 f"{mod.rank}")
            mod.A.copy_(a.float())
            mod.B.copy_(b.float() / mod.scale)
            n += 1
    return n


def merge_adapter(model: nn.Module, state: dict[str, Any]) -> int:
    """Add each adapter's ``B @ A`` into the matching plain linear weight of ``model``.

    Returns the number of layers changed. A name in ``state`` that ``model`` lacks is an
    error (the adapter belongs to another encoder).
    """
    names = {k.rsplit(".", 1)[0] for k in state}
    merged = 0
    with torch.no_grad():
        for name in sorted(names):
            try:
                lin = model.get_submodule(name)
            except AttributeError as exc:
                raise ValueError(f"adapter layer {name!r} is not in this encoder") from exc
            if isinstance(lin, LoRALinear):
                lin = lin.base
            if not isinstance(lin, nn.Linear):
                raise ValueError(f"adapter layer {name!r} is not a linear layer")
            delta = state[f"{name}.B"].float() @ state[f"{name}.A"].float()
            if delta.shape != lin.weight.shape:
                raise ValueError(f"adapter layer {name!r} has shape {tuple(delta.shape)}, "
                                 f"the encoder {tuple(lin.weight.shape)}")
            lin.weight += delta.to(lin.weight.dtype).to(lin.weight.device)
            merged += 1
    return merged
