from __future__ import annotations

import numpy as np
import pytest

from valueflow.errors import DataError
from valueflow.judges import SimulatedRatingJudge, SimulatedTextJudge, make_judge


async def test_sharp_sim_judge_ranks_by_truth(value) -> None:
    truth = {f"t{i}": float(i) for i in range(-5, 6)}
    judge = SimulatedTextJudge(truth, beta=50.0, seed=1)
    texts = list(truth)[::-1][::2] + list(truth)[::2]
    out = await judge.rank(value, list(dict.fromkeys(texts)))
    shown = list(dict.fromkeys(texts))
    assert [truth[shown[i]] for i in out.order] == sorted((truth[t] for t in shown), reverse=True)


async def test_blunt_sim_judge_is_noisy_but_informative(value) -> None:
    truth = {"hi": 2.0, "lo": -2.0}
    judge = SimulatedTextJudge(truth, beta=0.5, seed=3)
    outs = await judge.rank_many(value, [["hi", "lo"]] * 2000)
    wins = sum(o.order is not None and o.order[0] == 0 for o in outs)
    # Plackett-Luce: P(hi first) = 1 / (1 + exp(-0.5 * 4)) = 0.881
    assert abs(wins / 2000 - 1 / (1 + np.exp(-2.0))) < 0.03


async def test_sim_judges_reject_unknown_texts(value) -> None:
    judge = SimulatedTextJudge({"a": 1.0}, beta=1.0)
    with pytest.raises(DataError, match="truth table"):
        judge.check_texts(["a", "b"])
    with pytest.raises(DataError, match="no latent intensity"):
        await judge.rank(value, ["a", "b"])


async def test_sim_rating_judge_noise(value) -> None:
    judge = SimulatedRatingJudge({"a": 3.0}, noise_sd=1.0, bias=1.0, seed=0)
    ratings = [o.rating for o in await judge.rate_many(value, ["a"] * 2000)]
    assert abs(np.mean(ratings) - 4.0) < 0.1 and abs(np.std(ratings) - 1.0) < 0.1
    assert isinstance(make_judge("sim", method="rating", truth={"a": 1.0}), SimulatedRatingJudge)
