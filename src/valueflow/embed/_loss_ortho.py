"""A penalty that keeps the direction axes of different values apart.

For each value with both supporting and opposing texts among the rows, its *direction axis* is
the mean normalised embedding of its supporting texts minus that of its opposing ones. Without
a constraint, contrastive training tends to learn one shared good-versus-bad axis: every
value's axis turns into the same sentiment direction, and "how much a text supports care" can
no longer be told apart from "how much it supports loyalty". The penalty is the mean squared
cosine between the axes of distinct values, so it is zero exactly when the axes are mutually
orthogonal. (Squared, not absolute: the gradient of ``|cos|`` does not vanish at 0 and makes
nearly orthogonal axes jitter.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ValueAxisOrthogonalityLoss"]


class ValueAxisOrthogonalityLoss(nn.Module):
    """Mean squared cosine between the supports-minus-opposes axes of distinct values.

    Inputs of :meth:`forward`: ``embeddings`` ``(n, d)`` (rows are L2-normalised here);
    ``value`` ``(n,)`` int value ids; ``direction`` ``(n,)`` in {-1, 0, +1}. Values lacking
    either direction among the rows are skipped; with fewer than two axes the loss is zero.
    """

    def forward(self, embeddings: Tensor, value: Tensor, direction: Tensor) -> Tensor:
        z = nn.functional.normalize(embeddings, dim=-1)
        values = torch.unique(value)
        sup = (value[None, :] == values[:, None]) & (direction[None, :] > 0)
        opp = (value[None, :] == values[:, None]) & (direction[None, :] < 0)
        ok = sup.any(dim=1) & opp.any(dim=1)
        if int(ok.sum()) < 2:
            return z.sum() * 0.0
        sup, opp = sup[ok].to(z.dtype), opp[ok].to(z.dtype)
        axes = sup @ z / sup.sum(1, keepdim=True) - opp @ z / opp.sum(1, keepdim=True)
        axes = nn.functional.normalize(axes, dim=-1)
        cos = axes @ axes.T
        k = cos.shape[0]
        off = ~torch.eye(k, dtype=torch.bool, device=z.device)
        return (cos[off] ** 2).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Settings, as sentence-transformers losses report them."""
        return {}
