"""Hierarchical supervised contrastive loss with a level-monotone constraint and a direction push.

The idea follows Zhang et al., *Use All The Labels: A Hierarchical Multi-Label Contrastive
Learning Framework* (CVPR 2022): one supervised contrastive term (Khosla et al., 2020) per
hierarchy level, where texts sharing the label path down to level ``l`` are positives, a level
weight per term, and the *hierarchy-constrained* variant (HiConE) in which a deeper level's
loss is clamped to be no lower than the largest shallower one.

Differences from the paper's reference scripts (see the method notes, §3.3):

* Positives must also share the direction (supports / opposes). Neutral texts (direction 0)
  are never positives: they do not express the value, so they are negatives only.
* Texts of opposite direction in the same ``push_group`` (by default the same deepest label,
  i.e. the same value) get ``push_margin`` *added* to their logits. A larger logit makes a
  negative harder (it takes more of the softmax mass), so the gradient pushes the pair apart
  more strongly. The reference subtracted it, which made those negatives easier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["HierarchicalContrastiveLoss", "default_level_weights"]


def default_level_weights(n_levels: int) -> list[float]:
    """``2 ** (1 / l)`` for l = 1..n: coarser levels weigh a little more."""
    return [2.0 ** (1.0 / lvl) for lvl in range(1, n_levels + 1)]


class HierarchicalContrastiveLoss(nn.Module):
    """Hierarchical supervised contrastive loss over one batch of embeddings.

    Inputs of :meth:`forward`:

    * ``embeddings``: ``(n, d)`` float, any scale (rows are L2-normalised here);
    * ``levels``: ``(n, L)`` int labels, coarsest level first; row i and j are positives at
      level l when ``levels[i, :l+1] == levels[j, :l+1]`` and their directions agree;
    * ``direction``: ``(n,)`` int in {-1, 0, +1}; 0 (neutral) rows are negatives only;
    * ``push_group``: optional ``(n,)`` int; opposite-direction pairs in the same group get the
      push margin (default: ``levels[:, -1]``).

    Output: a scalar ``sum_l w_l * L~_l / sum_{used l} 1`` where ``L_l`` is the mean over anchors
    with at least one level-l positive of ``-mean_{p in P_l(i)} log softmax_{j != i}(s_ij)[p]``
    and ``L~_l = max(L_l, max_{k<l} L~_k)`` (the running max is detached), when
    ``monotone=True``. ``s_ij = cos(z_i, z_j) / temperature + push_margin * opp_ij``.

    Args:
        temperature: Softmax temperature τ.
        level_weights: Weight per level (default :func:`default_level_weights`).
        push_margin: Logit added to opposite-direction pairs of the same push group (≥ 0).
        monotone: Apply the hierarchy constraint (HiConE).
    """

    def __init__(self, temperature: float = 0.1, level_weights: Sequence[float] | None = None,
                 push_margin: float = 1.0, monotone: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        if push_margin < 0:
            raise ValueError("push_margin must be >= 0 (a negative margin weakens the push)")
        self.temperature = float(temperature)
        self.level_weights = None if level_weights is None else [float(w) for w in level_weights]
        self.push_margin = float(push_margin)
        self.monotone = bool(monotone)
        self.last_level_losses: list[float | None] = []

    def forward(self, embeddings: Tensor, levels: Tensor, direction: Tensor,
                push_group: Tensor | None = None) -> Tensor:
        n, n_levels = levels.shape
        weights = self.level_weights or default_level_weights(n_levels)
        if len(weights) != n_levels:
            raise ValueError(f"{len(weights)} level weights for {n_levels} levels")
        z = nn.functional.normalize(embeddings, dim=-1)
        logits = z @ z.T / self.temperature
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        group = levels[:, -1] if push_group is None else push_group
        opposite = (direction[:, None] * direction[None, :] < 0) & (group[:, None] == group[None, :])
        logits = logits + self.push_margin * opposite.to(logits.dtype)
        logits = logits.masked_fill(eye, float("-inf"))
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        log_prob = log_prob.masked_fill(eye, 0.0)

        same_dir = (direction[:, None] == direction[None, :]) & (direction[:, None] != 0)
        prefix = torch.ones(n, n, dtype=torch.bool, device=z.device)
        total = z.new_zeros(())
        used = 0
        running: Tensor | None = None
        self.last_level_losses = []
        for lvl in range(n_levels):
            prefix = prefix & (levels[:, lvl][:, None] == levels[:, lvl][None, :])
            pos = prefix & same_dir & ~eye
            n_pos = pos.sum(dim=1)
            anchors = n_pos > 0
            if not bool(anchors.any()):
                self.last_level_losses.append(None)
                continue
            per_anchor = -(log_prob * pos).sum(dim=1)[anchors] / n_pos[anchors]
            loss_l = per_anchor.mean()
            if self.monotone and running is not None:
                loss_l = torch.maximum(loss_l, running)
            running = loss_l.detach() if running is None else torch.maximum(running,
                                                                             loss_l.detach())
            self.last_level_losses.append(float(loss_l.detach()))
            total = total + weights[lvl] * loss_l
            used += 1
        return total / max(used, 1)

    def get_config_dict(self) -> dict[str, Any]:
        """Settings, as sentence-transformers losses report them."""
        return {"temperature": self.temperature, "level_weights": self.level_weights,
                "push_margin": self.push_margin, "monotone": self.monotone}
