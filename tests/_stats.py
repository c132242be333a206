"""Statistical yardsticks for sampler tests (NumPy, on host copies of the samples)."""

from __future__ import annotations

import numpy as np
from _helpers import to_numpy


def sliced_wasserstein(x, y, n_proj: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two equal-size sample sets ``(n, d)``.

    The 1-D W2 distance between two empirical measures of the same size is the RMS gap
    between their sorted projections; SW2 averages its square over ``n_proj`` random
    directions (fixed by ``seed``, so both arguments see the same directions).
    """
    x, y = np.asarray(to_numpy(x), dtype=np.float64), np.asarray(to_numpy(y), dtype=np.float64)
    assert x.shape == y.shape, (x.shape, y.shape)
    theta = np.random.default_rng(seed).normal(size=(x.shape[1], n_proj))
    theta /= np.linalg.norm(theta, axis=0)
    px, py = np.sort(x @ theta, axis=0), np.sort(y @ theta, axis=0)
    return float(np.sqrt(np.mean((px - py) ** 2)))


def sw_floor(draw, n_pairs: int = 3) -> float:
    """Mean SW between independent pairs of exact sample sets (``draw()`` gives one set).

    The SW between finite samples of the *same* law is not zero: it is the Monte-Carlo
    floor a sampler is compared against. Averaging a few pairs steadies it.
    """
    sets = [draw() for _ in range(n_pairs + 1)]
    return float(np.mean([sliced_wasserstein(sets[i], sets[i + 1]) for i in range(n_pairs)]))


def moment_z_scores(samples, mean, cov):
    """Largest |error| of the sample mean and covariance in units of their Monte-Carlo sd.

    For n i.i.d. draws of N(m, P): the sample mean has sd sqrt(P_ii / n); the sample
    covariance entry (i, j) has variance (P_ij^2 + P_ii P_jj) / n (Wishart moments).
    """
    x = np.asarray(to_numpy(samples), dtype=np.float64)
    m, P = np.asarray(to_numpy(mean), np.float64), np.asarray(to_numpy(cov), np.float64)
    n = x.shape[0]
    z_mean = np.abs(x.mean(axis=0) - m) / np.sqrt(np.diag(P) / n)
    sd_cov = np.sqrt((P**2 + np.outer(np.diag(P), np.diag(P))) / n)
    z_cov = np.abs(np.cov(x, rowvar=False) - P) / sd_cov
    return float(z_mean.max()), float(z_cov.max())
