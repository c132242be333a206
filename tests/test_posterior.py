"""Pixel-wise posterior summaries (invdiff._posterior) on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close, from_numpy, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from invdiff._posterior import quantile, summarize


@pytest.mark.parametrize("q", [0.0, 0.05, 0.3, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("K", [1, 2, 5, 16])
def test_quantile_matches_numpy_linear(xp, q, K):
    a = np.random.default_rng(K).normal(size=(K, 3, 4))
    got = quantile(from_numpy(a, xp), q)
    assert_close(got, from_numpy(np.quantile(a, q, axis=0), xp), rtol=1e-12, atol=1e-12)


def test_summarize_moments_and_interval(xp):
    a = np.random.default_rng(0).normal(size=(9, 2, 3, 3))
    out = summarize(from_numpy(a, xp), level=0.9)
    assert_close(out["mean"], from_numpy(a.mean(0), xp), rtol=1e-12)
    assert_close(out["std"], from_numpy(a.std(0, ddof=1), xp), rtol=1e-12)
    lo, hi = np.quantile(a, [0.05, 0.95], axis=0)
    assert_close(out["lower"], from_numpy(lo, xp), rtol=1e-12, atol=1e-12)
    assert_close(out["width"], from_numpy(hi - lo, xp), rtol=1e-12, atol=1e-12)


def test_single_sample_has_zero_spread():
    out = summarize(np.ones((1, 2, 2)))
    assert np.all(out["std"] == 0) and np.all(out["width"] == 0)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 40), st.floats(0.1, 0.99))
def test_interval_coverage_of_its_own_samples(K, level):
    # the empirical central interval holds at least level*K - 2 of the K samples
    a = np.random.default_rng(K).normal(size=(K, 50))
    out = summarize(a, level=level)
    inside = (a >= out["lower"]) & (a <= out["upper"])
    assert np.all(inside.sum(0) >= np.floor(level * (K - 1)) - 1)
    assert np.all(to_numpy(out["width"]) >= 0)


@pytest.mark.parametrize("bad", [{"level": 0.0}, {"level": 1.0}])
def test_bad_level(bad):
    with pytest.raises(ValueError, match="level"):
        summarize(np.zeros((2, 3)), **bad)


def test_bad_q():
    with pytest.raises(ValueError, match="q must"):
        quantile(np.zeros((2, 3)), 1.5)
