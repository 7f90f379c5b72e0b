"""The HiVES losses against brute-force references on tiny tensors."""

from __future__ import annotations

import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from valueflow.embed import AnchorInfoNCELoss, HierarchicalContrastiveLoss  # noqa: E402


def brute_hier(emb, levels, direction, tau, weights, margin, monotone):
    """Loop-by-loop reference of the documented formula."""
    n, n_levels = len(levels), len(levels[0])
    z = [[x / math.sqrt(sum(y * y for y in e)) for x in e] for e in emb]

    def s(i, j):
        val = sum(a * b for a, b in zip(z[i], z[j], strict=True)) / tau
        if direction[i] * direction[j] < 0 and levels[i][-1] == levels[j][-1]:
            val += margin
        return val

    total, used, running = 0.0, 0, None
    for lvl in range(n_levels):
        per = []
        for i in range(n):
            pos = [j for j in range(n) if j != i and direction[i] != 0
                   and direction[i] == direction[j] and levels[i][: lvl + 1] == levels[j][: lvl + 1]]
            if not pos:
                continue
            denom = math.log(sum(math.exp(s(i, j)) for j in range(n) if j != i))
            per.append(-sum(s(i, p) - denom for p in pos) / len(pos))
        if not per:
            continue
        loss = sum(per) / len(per)
        if monotone and running is not None:
            loss = max(loss, running)
        running = loss if running is None else max(running, loss)
        total += weights[lvl] * loss
        used += 1
    return total / max(used, 1)


LEVELS = [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 2], [0, 1, 2], [1, 2, 3], [1, 2, 3], [0, 0, 0]]
DIRS = [1, 1, 1, 1, -1, -1, -1, -1]


@pytest.mark.parametrize("monotone", [True, False])
@pytest.mark.parametrize("margin", [0.0, 1.5])
def test_hier_loss_matches_brute_force(monotone, margin):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(8, 5, generator=g)
    weights = [1.0, 0.7, 0.4]
    loss = HierarchicalContrastiveLoss(0.2, weights, push_margin=margin, monotone=monotone)
    got = loss(emb, torch.tensor(LEVELS), torch.tensor(DIRS))
    want = brute_hier(emb.tolist(), LEVELS, DIRS, 0.2, weights, margin, monotone)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_monotone_levels_never_decrease():
    g = torch.Generator().manual_seed(3)
    loss = HierarchicalContrastiveLoss(0.1)
    for _ in range(5):
        loss(torch.randn(8, 4, generator=g), torch.tensor(LEVELS), torch.tensor(DIRS))
        vals = [v for v in loss.last_level_losses if v is not None]
        assert all(b >= a - 1e-6 for a, b in itertools.pairwise(vals))
    # Without the constraint a deeper level can be lower: the clamp is doing something.
    free = HierarchicalContrastiveLoss(0.1, monotone=False)
    seen_drop = False
    for _ in range(20):
        free(torch.randn(8, 4, generator=g), torch.tensor(LEVELS), torch.tensor(DIRS))
        v = [x for x in free.last_level_losses if x is not None]
        seen_drop |= any(b < a for a, b in itertools.pairwise(v))
    assert seen_drop


def test_opposite_direction_is_pushed_harder():
    # Two same-value texts of opposite direction plus their positives and an unrelated text.
    levels = torch.tensor([[0, 0], [0, 0], [0, 0], [0, 0], [1, 1]])
    direction = torch.tensor([1, 1, -1, -1, 1])
    far = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [-1.0, 0, 0], [-0.9, 0, 0.1], [0, 1.0, 0]])
    close = far.clone()
    close[2] = torch.tensor([0.8, 0.2, 0.0])  # an opposing text sitting among supporters
    rise = {}
    for margin in (0.0, 2.0):
        loss = HierarchicalContrastiveLoss(0.5, [1.0, 1.0], push_margin=margin)
        rise[margin] = (loss(close, levels, direction) - loss(far, levels, direction)).item()
    assert rise[0.0] > 0
    assert rise[2.0] > rise[0.0]
    # The push acts through the gradient: one descent step separates the pair further.
    gap = {}
    for margin in (0.0, 2.0):
        x = close.clone().requires_grad_(True)
        HierarchicalContrastiveLoss(0.5, [1.0, 1.0], push_margin=margin)(
            x, levels, direction).backward()
        y = torch.nn.functional.normalize(x.detach() - 0.1 * x.grad, dim=-1)
        gap[margin] = (y[0] @ y[2]).item()
    assert gap[2.0] < gap[0.0]


def test_neutral_texts_are_never_positives():
    levels = torch.tensor([[0], [0], [0]])
    loss = HierarchicalContrastiveLoss(0.1, [1.0])
    out = loss(torch.randn(3, 4), levels, torch.tensor([0, 0, 0]))
    assert out.item() == 0.0 and loss.last_level_losses == [None]


def test_negative_margin_rejected():
    with pytest.raises(ValueError, match="weakens the push"):
        HierarchicalContrastiveLoss(push_margin=-1.0)


def test_anchor_infonce_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(6, 4, generator=g)
    groups = [0, 0, 1, 1, 1, -1]
    got = AnchorInfoNCELoss(0.3)(emb, torch.tensor(groups)).item()
    z = torch.nn.functional.normalize(emb, dim=-1).tolist()
    per = []
    for i in range(6):
        pos = [j for j in range(6) if j != i and groups[i] >= 0 and groups[j] == groups[i]]
        if not pos:
            continue
        s = [sum(a * b for a, b in zip(z[i], z[j], strict=True)) / 0.3 for j in range(6)]
        den = math.log(sum(math.exp(s[j]) for j in range(6) if j != i))
        per.append(-sum(s[p] - den for p in pos) / len(pos))
    assert got == pytest.approx(sum(per) / len(per), rel=1e-5)
    assert AnchorInfoNCELoss()(emb, torch.tensor([-1, 0, 1, 2, 3, 4])).item() == 0.0


def brute_axis_penalty(emb, value, direction):
    z = [[x / math.sqrt(sum(y * y for y in e)) for x in e] for e in emb]
    axes = []
    for v in sorted(set(value)):
        sup = [z[i] for i in range(len(z)) if value[i] == v and direction[i] > 0]
        opp = [z[i] for i in range(len(z)) if value[i] == v and direction[i] < 0]
        if not sup or not opp:
            continue
        d = len(z[0])
        a = [sum(r[k] for r in sup) / len(sup) - sum(r[k] for r in opp) / len(opp)
             for k in range(d)]
        nrm = math.sqrt(sum(x * x for x in a))
        axes.append([x / nrm for x in a])
    cos2 = [sum(p * q for p, q in zip(axes[i], axes[j], strict=True)) ** 2
            for i in range(len(axes)) for j in range(len(axes)) if i != j]
    return sum(cos2) / len(cos2)


def test_axis_orthogonality_matches_brute_force():
    from valueflow.embed import ValueAxisOrthogonalityLoss

    g = torch.Generator().manual_seed(2)
    emb = torch.randn(9, 5, generator=g)
    value = [0, 0, 0, 1, 1, 2, 2, 2, 3]  # value 3 has one direction only: skipped
    direction = [1, -1, 0, 1, -1, 1, 1, -1, 1]
    got = ValueAxisOrthogonalityLoss()(emb, torch.tensor(value), torch.tensor(direction))
    assert got.item() == pytest.approx(brute_axis_penalty(emb.tolist(), value, direction),
                                       rel=1e-5)


def test_axis_orthogonality_punishes_a_shared_axis():
    from valueflow.embed import ValueAxisOrthogonalityLoss

    loss = ValueAxisOrthogonalityLoss()
    value = torch.tensor([0, 0, 1, 1])
    direction = torch.tensor([1, -1, 1, -1])
    # Value 0 varies along e0 + e1 ... e0 - e1, value 1 along e2 + e3 ... e2 - e3: orthogonal.
    ortho = torch.tensor([[1.0, 1, 0, 0], [1, -1, 0, 0], [0, 0, 1, 1], [0, 0, 1, -1]])
    assert loss(ortho, value, direction).item() == pytest.approx(0.0, abs=1e-7)
    # One shared "good" coordinate (e3) for both values: the axes coincide partly.
    shared = torch.tensor([[1.0, 0, 0, 1], [1, 0, 0, -1], [0, 1, 0, 1], [0, 1, 0, -1]])
    assert loss(shared, value, direction).item() == pytest.approx(1.0, rel=1e-5)
    # A descent step makes the axes less aligned.
    x = (shared + 0.3 * torch.randn(4, 4, generator=torch.Generator().manual_seed(0)))
    x.requires_grad_(True)
    before = loss(x, value, direction)
    before.backward()
    after = loss(x.detach() - 0.1 * x.grad, value, direction)
    assert after.item() < before.item()
    # Fewer than two values with both directions: nothing to compare.
    assert loss(ortho, value, torch.tensor([1, 1, 1, -1])).item() == 0.0
