"""No method waits for the device inside its loop: host synchronisations per step are 0.

Each recipe below runs one method of :data:`invdiff.methods.__all__` on torch tensors with
``steps`` steps (levels for the Langevin methods). Validation at construction may look at the
data (it happens once); the steps may not. So the number of synchronisations counted by
:class:`_syncs.SyncCounter` must be the same for 10 and for 20 steps. A method without a recipe
fails :func:`test_every_method_has_a_recipe`: whoever adds a method adds its line here.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from _syncs import SyncCounter  # noqa: E402

import invdiff as ivd  # noqa: E402

D, M, SIGMA = 6, 3, 0.1


def _devices():
    params = [pytest.param("cpu", id="cpu")]
    params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")))
    return params


class _Inputs:
    """A Gaussian prior, a dense operator and measurements on ``device`` (float64)."""

    def __init__(self, device):
        f64 = dict(dtype=torch.float64, device=device)
        gen = torch.Generator().manual_seed(0)
        A = torch.randn(M, D, generator=gen, dtype=torch.float64).to(device)
        self.op = ivd.operators.DenseMatrix(A)
        self.A = A
        self.y = torch.tensor([0.4, -0.2, 0.1], **f64)
        z = self.y
        self.lower = torch.where(z >= 0, 0.0, -math.inf).to(**f64)
        self.upper = torch.where(z >= 0, math.inf, 0.0).to(**f64)
        self.mean, self.cov = torch.zeros(D, **f64), torch.eye(D, **f64)

    def prior(self, process):
        return ivd.priors.GaussianPrior(self.mean, self.cov, process=process)

    def vp(self):
        return self.prior(ivd.processes.VP.linear(1000))

    def ve(self, levels):
        return ivd.processes.VE.geometric(5.0, 0.01, levels)


m = ivd.methods
# name -> recipe(inputs, steps): one run of the method with `steps` steps, 2 samples
RECIPES = {
    "dmps": lambda d, s: m.dmps(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "dps": lambda d, s: m.dps(d.vp(), d.op, d.y, rng=0, n=2, steps=s),
    "pigdm": lambda d, s: m.pigdm(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "dmps_flow": lambda d, s: m.dmps_flow(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "dps_flow": lambda d, s: m.dps_flow(d.vp(), d.op, d.y, rng=0, n=2, steps=s),
    "ot_ode": lambda d, s: m.ot_ode(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "qcs_sgm": lambda d, s: m.qcs_sgm(d.prior(d.ve(s)), d.A, d.lower, d.upper, SIGMA, rng=0,
                                      n=2, steps_each=1),
    "qcs_sgm_plus": lambda d, s: m.qcs_sgm_plus(d.prior(d.ve(s)), d.A, d.lower, d.upper,
                                                SIGMA, rng=0, n=2, steps_each=1),
    "ald_cs": lambda d, s: m.ald_cs(d.prior(d.ve(s)), d.A, d.y, SIGMA, rng=0, n=2,
                                    steps_each=1),
    "ddrm": lambda d, s: m.ddrm(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "ddnm": lambda d, s: m.ddnm(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "mcgdiff": lambda d, s: m.mcgdiff(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s,
                                      n_particles=4),
    "diffpir": lambda d, s: m.diffpir(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, steps=s),
    "daps": lambda d, s: m.daps(d.vp(), d.op, d.y, SIGMA, rng=0, n=2, annealing_steps=s,
                                ode_steps=1, langevin_steps=3),
    "daps (1-bit)": lambda d, s: m.daps(d.vp(), d.A, (d.lower, d.upper), SIGMA, rng=0, n=2,
                                        annealing_steps=s, ode_steps=1, langevin_steps=3),
    "red_diff": lambda d, s: m.red_diff(d.vp(), d.op, d.y, rng=0, n=2, steps=s),
    "red_diff (random order)": lambda d, s: m.red_diff(d.vp(), d.op, d.y, rng=0, n=2, steps=s,
                                                       schedule="random"),
}


def test_every_method_has_a_recipe():
    missing = sorted(set(ivd.methods.__all__) - set(RECIPES))
    assert not missing, f"add a recipe to tests/test_host_syncs.py for: {missing}"


def _syncs(name, inputs, steps):
    with SyncCounter() as counter:
        out = RECIPES[name](inputs, steps)
    assert isinstance(out, torch.Tensor) and bool(torch.isfinite(out).all())
    return counter


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_no_host_sync_per_step(name, device):
    inputs = _Inputs(device)
    _syncs(name, inputs, 10)  # warm caches (constants cast once per dtype and device)
    short, long = _syncs(name, inputs, 10), _syncs(name, inputs, 20)
    assert long.total == short.total, (
        f"{name}: {long.total - short.total} host synchronisations in 10 extra steps "
        f"({dict(long.calls - short.calls)}); hot loops must not convert device values")


def test_the_counter_sees_conversions():
    x = torch.ones(3)
    with SyncCounter() as c:
        float(x[0]), bool(x[1] > 0), x.tolist(), x[2].item()
        if x.sum() > 0:
            pass
    assert c.calls == {"__float__": 1, "__bool__": 2, "tolist": 1, "item": 1}


def test_learned_variance_at_a_python_time_equals_the_tensor_path():
    """The adapter computes ADM's variance bounds for a Python time on the host (no GPU round
    trip); a tensor of times takes the tensor path: both give the same numbers."""
    from invdiff_models import adapter

    proc = ivd.processes.VP.linear(1000)
    for t in (1.0, 1.5, 2.0, 37.25, 999.0, 1000.0):
        scalar = adapter._log_variance_bounds(proc, t, math)
        tensor = adapter._log_variance_bounds(proc, torch.tensor([t], dtype=torch.float64))
        for a, b in zip(scalar, tensor, strict=True):
            assert isinstance(a, float) and math.isclose(a, float(b[0]), rel_tol=1e-12)
