"""Supervised InfoNCE over cross-theory anchor groups (HiVES stage 2).

Texts whose values are linked by one cross-theory anchor (e.g. Schwartz benevolence-caring,
MFT caring and Ross beneficence) and that share a direction are positives; every other text in
the sub-batch is a negative. This is the supervised contrastive loss of Khosla et al.
(*Supervised Contrastive Learning*, NeurIPS 2020) with group ids as labels, the form used for
cross-domain alignment (InfoNCE, van den Oord et al., 2018).

Unlike the reference, the sub-batch handed to this loss holds several anchor groups *and*
their negatives (see :class:`~valueflow.embed.CrossTheoryBatchSampler`), so the softmax has
something to push away from.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["AnchorInfoNCELoss"]


class AnchorInfoNCELoss(nn.Module):
    """Supervised InfoNCE: rows with the same non-negative group id are positives.

    Inputs of :meth:`forward`: ``embeddings`` ``(n, d)``; ``groups`` ``(n,)`` int, ``-1`` for
    rows that are negatives only. Output: the mean over rows with at least one positive of
    ``-mean_{p} log softmax_{j != i}(cos(z_i, z_j) / τ)[p]``; zero when no row has a positive.

    Args:
        temperature: Softmax temperature τ.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.temperature = float(temperature)

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        n = embeddings.shape[0]
        z = nn.functional.normalize(embeddings, dim=-1)
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        logits = (z @ z.T / self.temperature).masked_fill(eye, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        log_prob = log_prob.masked_fill(eye, 0.0)
        pos = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0) & ~eye
        n_pos = pos.sum(dim=1)
        anchors = n_pos > 0
        if not bool(anchors.any()):
            return z.sum() * 0.0
        return (-(log_prob * pos).sum(dim=1)[anchors] / n_pos[anchors]).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Settings, as sentence-transformers losses report them."""
        return {"temperature": self.temperature}
