"""Plackett–Luce fitting: gradients, golden cases, recovery, invariances, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from valueflow.errors import ConfigError, DataError
from valueflow.ranking import PLFitResult, fit_plackett_luce, sample_pl_rankings
from valueflow.ranking._data import pack_rankings
from valueflow.ranking._likelihood import hessian, hessian_operator, loglik_and_grad
from valueflow.ranking._se import posterior_sd


def brute_loglik(u, rankings, top=None, weights=None):
    total = 0.0
    for i, r in enumerate(rankings):
        t = len(r) - 1 if top is None else min(top[i], len(r) - 1)
        w = 1.0 if weights is None else weights[i]
        total += w * sum(u[r[j]] - logsumexp(u[list(r[j:])]) for j in range(t))
    return total


def random_rankings(rng, n, count, max_len=6):
    return [
        tuple(int(x) for x in rng.choice(n, rng.integers(2, max_len + 1), replace=False))
        for _ in range(count)
    ]


def simulate(rng, u, count, k):
    sets = np.array([rng.choice(u.size, k, replace=False) for _ in range(count)])
    order = sample_pl_rankings(u[sets], rng)
    return np.take_along_axis(sets, order, axis=1)


def test_loglik_matches_brute_force_with_partial_and_weights():
    rng = np.random.default_rng(0)
    n = 12
    rankings = random_rankings(rng, n, 40)
    top = [int(rng.integers(1, 5)) for _ in rankings]
    weights = rng.random(len(rankings)) * 2
    u = rng.normal(size=n) * 2
    groups = pack_rankings(rankings, n, top=top, weights=weights)
    ll, _ = loglik_and_grad(u, groups)
    assert ll == pytest.approx(brute_loglik(u, rankings, top, weights), rel=1e-12)


def test_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(1)
    n = 15
    rankings = random_rankings(rng, n, 60)
    groups = pack_rankings(rankings, n, top=[3] * 60, weights=rng.random(60) + 0.5)
    u = rng.normal(size=n) * 3
    _, grad = loglik_and_grad(u, groups)
    h = hessian(u, groups).toarray()
    eps = 1e-6
    num_g = np.empty(n)
    num_h = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        lp, gp = loglik_and_grad(u + e, groups)
        lm, gm = loglik_and_grad(u - e, groups)
        num_g[i] = (lp - lm) / (2 * eps)
        num_h[i] = -(gp - gm) / (2 * eps)
    np.testing.assert_allclose(grad, num_g, atol=1e-6)
    np.testing.assert_allclose(h, num_h, atol=1e-6)
    np.testing.assert_allclose(h, h.T, atol=1e-12)
    matvec, diag = hessian_operator(u, groups)
    v = rng.normal(size=n)
    np.testing.assert_allclose(matvec(v), h @ v, atol=1e-10)
    np.testing.assert_allclose(diag, np.diag(h), atol=1e-12)


def test_extreme_utilities_stay_finite():
    groups = pack_rankings([(0, 1, 2), (2, 1)], 3)
    ll, g = loglik_and_grad(np.array([800.0, -800.0, 0.0]), groups)
    assert np.isfinite(ll) and np.all(np.isfinite(g))


def test_golden_two_items_closed_form():
    # 7 wins of item 0 and 3 of item 1: ML difference is log(7/3).
    rankings = [(0, 1)] * 7 + [(1, 0)] * 3
    u = fit_plackett_luce(rankings, 2, prior_var=None)
    assert u[0] - u[1] == pytest.approx(np.log(7 / 3), abs=1e-6)
    assert u.sum() == pytest.approx(0.0, abs=1e-9)
    # With a prior the MAP solves 7·σ(-d) - 3·σ(d) = u0/v, with u1 = -u0, d = 2·u0.
    v = 0.5
    u = fit_plackett_luce(rankings, 2, prior_var=v)
    d = u[0] - u[1]
    assert u[0] == pytest.approx(-u[1])
    sig = 1 / (1 + np.exp(-d))
    assert 7 * (1 - sig) - 3 * sig == pytest.approx(u[0] / v, abs=1e-6)


def test_weights_equal_repeated_rankings():
    rng = np.random.default_rng(2)
    rankings = random_rankings(rng, 8, 30)
    counts = rng.integers(1, 4, size=30)
    repeated = [r for r, c in zip(rankings, counts, strict=True) for _ in range(c)]
    a = fit_plackett_luce(repeated, 8)
    b = fit_plackett_luce(rankings, 8, weights=counts)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_matches_choix_opt_rankings():
    choix = pytest.importorskip("choix")
    rng = np.random.default_rng(3)
    u = rng.normal(size=20)
    data = simulate(rng, u, 300, 4)
    ours = fit_plackett_luce(data, 20, prior_var=None)
    theirs = choix.opt_rankings(20, [list(r) for r in data], alpha=0)
    np.testing.assert_allclose(ours, theirs - theirs.mean(), atol=1e-4)


def test_newton_and_lbfgs_agree():
    rng = np.random.default_rng(4)
    data = simulate(rng, rng.normal(size=50) * 2, 400, 3)
    a = fit_plackett_luce(data, 50, method="newton")
    b = fit_plackett_luce(data, 50, method="lbfgs")
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("k", [2, 5])
def test_recovery_error_shrinks_with_data(k):
    rng = np.random.default_rng(5)
    u = rng.normal(size=40) * 1.5
    errs = []
    for count in (200, 3200):
        data = simulate(rng, u, count, k)
        est = fit_plackett_luce(data, 40, prior_var=10.0)
        est -= est.mean()
        errs.append(np.sqrt(np.mean((est - (u - u.mean())) ** 2)))
    assert errs[1] < errs[0] / 2.5  # 16× data → ~4× smaller error
    assert errs[1] < 0.3


def test_invariant_to_relabelling_and_utility_shift():
    rng = np.random.default_rng(6)
    u = rng.normal(size=25)
    data = simulate(rng, u, 500, 4)
    est = fit_plackett_luce(data, 25, prior_var=None)
    perm = rng.permutation(25)
    est_perm = fit_plackett_luce(perm[data], 25, prior_var=None)
    np.testing.assert_allclose(est_perm[perm], est, atol=1e-6)
    # The likelihood depends on utilities only up to a constant.
    groups = pack_rankings(data, 25)
    assert loglik_and_grad(u + 3.7, groups)[0] == pytest.approx(loglik_and_grad(u, groups)[0])


def test_standard_errors_exact_and_approx():
    rng = np.random.default_rng(7)
    data = simulate(rng, rng.normal(size=60), 900, 2)
    res = fit_plackett_luce(data, 60, return_se=True)
    assert isinstance(res, PLFitResult) and res.se_method == "exact"
    u, se = res  # unpacks as (utilities, se)
    h = hessian(u, pack_rankings(data, 60)).toarray() + np.eye(60) / 10.0
    np.testing.assert_allclose(se, np.sqrt(np.diag(np.linalg.inv(h))), rtol=1e-8)
    approx, method = posterior_sd(hessian(u, pack_rankings(data, 60)), 0.1, exact_max=10)
    assert method == "approx"
    assert np.all(approx <= se * 1.02) and np.all(approx >= se * 0.85)


def test_standard_errors_cover_truth():
    rng = np.random.default_rng(8)
    u = rng.normal(size=30)
    data = simulate(rng, u, 1500, 3)
    res = fit_plackett_luce(data, 30, prior_var=None, return_se=True)
    z = (res.utilities - (u - u.mean())) / res.se
    assert 0.5 < np.std(z) < 1.6
    assert np.mean(np.abs(z) < 1.96) > 0.8


def test_disconnected_graph_without_prior_raises_naming_components():
    rankings = [(0, 1), (1, 0), (2, 3), (3, 2)]
    with pytest.raises(DataError, match=r"not connected \(2 strongly connected components"):
        fit_plackett_luce(rankings, 4, prior_var=None)


def test_item_that_never_loses_without_prior_raises():
    with pytest.raises(DataError, match="not strongly connected"):
        fit_plackett_luce([(0, 1), (0, 2), (1, 2), (2, 1)], 3, prior_var=None)


def test_disconnected_graph_with_prior_warns_and_reports_components():
    rankings = [(0, 1), (0, 1), (2, 3)]
    with pytest.warns(UserWarning, match="2 connected components"):
        res = fit_plackett_luce(rankings, 4, return_se=True)
    assert res.n_components == 2
    assert res.components[0] == res.components[1] != res.components[2]
    # Each component is shrunk towards the prior mean independently.
    assert res.utilities[0] + res.utilities[1] == pytest.approx(0.0, abs=1e-8)


def test_uncompared_item_gets_prior():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_plackett_luce([(0, 1), (1, 0)], 3, prior_var=4.0, return_se=True)
    assert res.utilities[2] == pytest.approx(0.0, abs=1e-9)
    assert res.se[2] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("rankings", "n", "match"),
    [
        ([(0, 0)], 3, "repeats item 0"),
        ([(0, 5)], 3, "outside 0 .. 2"),
        ([(1,)], 3, "at least 2"),
        ([(0.5, 1)], 3, "non-integer"),
        ([], 3, "no rankings"),
        (np.array([[0, 1], [2, 2]]), 3, "ranking 1 repeats item 2"),
    ],
)
def test_bad_rankings_raise_data_error(rankings, n, match):
    with pytest.raises(DataError, match=match):
        fit_plackett_luce(rankings, n)


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="prior_var must be positive"):
        fit_plackett_luce([(0, 1)], 2, prior_var=-1.0)
    with pytest.raises(ConfigError, match="unknown method"):
        fit_plackett_luce([(0, 1)], 2, method="bogus")
    with pytest.raises(DataError, match="weights has shape"):
        fit_plackett_luce([(0, 1)], 2, weights=[1.0, 2.0])


rankings_strategy = st.integers(3, 9).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.permutations(list(range(n))).map(lambda p: tuple(p[: max(2, n // 2)])),
            min_size=1,
            max_size=15,
        ),
    )
)


@settings(max_examples=40, deadline=None)
@given(rankings_strategy, st.integers(0, 2**31 - 1))
def test_properties_of_likelihood_and_fit(case, seed):
    n, rankings = case
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n) * 3
    groups = pack_rankings(rankings, n)
    ll, g = loglik_and_grad(u, groups)
    assert ll <= 1e-12
    assert g.sum() == pytest.approx(0.0, abs=1e-8)  # shift invariance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fit_plackett_luce(rankings, n, prior_var=2.0)
        perm = rng.permutation(n)
        est_p = fit_plackett_luce([tuple(perm[list(r)]) for r in rankings], n, prior_var=2.0)
    np.testing.assert_allclose(est_p[perm], est, atol=1e-5)
    # MAP: stationary point of the penalised objective.
    _, g_hat = loglik_and_grad(est, groups)
    np.testing.assert_allclose(g_hat - est / 2.0, 0.0, atol=1e-5)
    # Every ranking's winner is estimated at least as high as items it beat in all rankings.
    assert np.all(np.isfinite(est))
