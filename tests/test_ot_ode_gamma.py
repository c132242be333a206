"""OT-ODE's ``gamma`` option: PnP-Flow's γ_t schedule, mapped to our time convention."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from _helpers import to_numpy

import invdiff as ivd

D = 4
A = np.eye(2, D)
Y = np.array([1.0, -1.0])
SIGMA_Y = 0.3


def _pnp_flow_gamma(tau):
    """``gamma_t`` as pnpflow/methods/ot_ode.py writes it, in ITS time (0 = noise, 1 = data)."""
    return math.sqrt(tau / (tau**2 + (1 - tau) ** 2))


def _prior():
    return ivd.priors.GaussianPrior(np.full(D, 0.5), np.eye(D) * 0.3,
                                    process=ivd.processes.Flow.rectified())


@pytest.mark.parametrize("t0", [0.8, 0.6, 0.3])
def test_gamma_t_scales_the_first_step_guidance_by_pnp_flow_gamma_at_its_time(t0):
    """One Euler step from ``t0``: the guided displacement with ``gamma="gamma_t"`` is
    γ(τ = 1 − t0) times the constant one. Evaluating PnP-Flow's formula at our ``t`` instead
    of its τ gives 1.085 instead of 0.542 at t0 = 0.8 (0.25 vs 1.46 at 0.3): the check
    fails for the wrong mapping."""
    prior, op = _prior(), ivd.operators.DenseMatrix(A)
    x0 = ivd.random.Generator(3).normal((5, D), like=np.zeros(1))
    run = {g: to_numpy(ivd.methods.ot_ode(prior, op, Y, SIGMA_Y, x_init=x0, steps=1,
                                          t_start=t0, gamma=g, rng=0))
           for g in ("constant", "gamma_t")}
    unguided = to_numpy(ivd.samplers.ode(prior, x0, steps=1, t_start=t0))
    shift_c, shift_g = run["constant"] - unguided, run["gamma_t"] - unguided
    assert np.abs(shift_c).max() > 1e-3  # the guidance moves the sample at all
    np.testing.assert_allclose(shift_g, _pnp_flow_gamma(1.0 - t0) * shift_c, rtol=1e-9,
                               atol=1e-12)


def test_gamma_constant_is_the_default_and_recorded():
    prior, op = _prior(), ivd.operators.DenseMatrix(A)
    a, info = ivd.methods.ot_ode(prior, op, Y, SIGMA_Y, rng=1, n=3, steps=4, return_info=True)
    b = ivd.methods.ot_ode(prior, op, Y, SIGMA_Y, rng=1, n=3, steps=4, gamma="constant")
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert info["gamma"] == "constant"


def test_unknown_gamma_is_refused_by_name():
    with pytest.raises(ValueError, match=r"gamma must be one of \('constant', 'gamma_t'\)"):
        ivd.methods.ot_ode(_prior(), ivd.operators.DenseMatrix(A), Y, SIGMA_Y, rng=0,
                           gamma="sqrt")


def test_restoration_benchmark_passes_ot_ode_settings_per_task():
    """Every task of the benchmark gets the t_start/gamma of its row of OT_ODE_SETTINGS."""
    restoration = pytest.importorskip("benchmarks.restoration")
    args = restoration.parse(["--methods", "OT-ODE", "--datasets", "natural"])
    spec = restoration.spec(args, ["natural"])
    by_task = spec["methods"]["OT-ODE"]["by_task"]
    assert set(by_task) == set(spec["tasks"])
    for key, table in spec["tasks"].items():
        want = restoration.OT_ODE_SETTINGS[table["title"].split()[0]]
        assert by_task[key] == want
        assert set(want) <= set(inspect.signature(ivd.methods.ot_ode).parameters)
