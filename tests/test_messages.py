"""Errors a user can read: every public entry point refuses malformed input with a
``ValueError``/``TypeError`` that names the argument (the cases of a hostile/careless-user
fuzz of the library; the CLI has its own tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import invdiff as ivd
from invdiff import methods as M
from invdiff.methods._common import RULES, check_arguments
from invdiff.processes import VE, VP, Flow

nan, inf = math.nan, math.inf
VP_ = VP.linear()
VE_ = VE.geometric(5.0, 0.01, 4)
FL = Flow.rectified()
D = 4
P_VP = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP_)
P_VE = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VE_)
P_FL = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=FL)
OP = ivd.operators.DenseMatrix(np.eye(2, D))
A = np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
Y = np.array([0.5, -0.5])
LO, HI = np.array([0.0, -inf]), np.array([inf, 0.0])
X = np.zeros((3, D))
KW = {"rng": 0, "steps": 3}
KQ = {"rng": 0}

# (id, call, exception type, regex the message must match)
CASES = [
    # processes
    ("VP.linear T=0", lambda: VP.linear(T=0), ValueError, "T must be a positive integer"),
    ("VP.linear T=2.5", lambda: VP.linear(T=2.5), ValueError, "T must be a positive integer"),
    ("VP.linear T=True", lambda: VP.linear(T=True), TypeError, "T must be a positive integer"),
    ("VP.linear T='3'", lambda: VP.linear(T="3"), TypeError, "T must be a positive integer"),
    ("VP.linear beta_min<0", lambda: VP.linear(beta_min=-1.0), ValueError, "beta_min"),
    ("VP.linear beta_max>1", lambda: VP.linear(beta_max=1.5), ValueError, "beta_max"),
    ("VP.linear max<min", lambda: VP.linear(beta_max=1e-5), ValueError,
     "beta_max must be >= beta_min"),
    ("VP.cosine T=0", lambda: VP.cosine(T=0), ValueError, "T must be"),
    ("VP.cosine s<0", lambda: VP.cosine(s=-1.0), ValueError, "s must be"),
    ("VP.cosine max_beta", lambda: VP.cosine(max_beta=1.5), ValueError, "max_beta"),
    ("VP betas str", lambda: VP("abc"), TypeError, "betas must be"),
    ("VP betas None", lambda: VP(None), TypeError, "betas must be"),
    ("VP betas >1", lambda: VP([0.5, 2.0]), ValueError, "betas must be"),
    ("VE sigma_min<0", lambda: VE(1.0, -1.0), ValueError, "sigma_min"),
    ("VE sigma_max str", lambda: VE("a", 0.1), TypeError, "sigma_max"),
    ("VE.geometric L=1", lambda: VE.geometric(1.0, 0.1, 1), ValueError, "L must be"),
    ("VE.geometric L=2.5", lambda: VE.geometric(1.0, 0.1, 2.5), ValueError, "L must be"),
    ("VP.a t<0", lambda: VP_.a(-5.0), ValueError, r"t must lie in \[0, 1000\]"),
    ("VP.b t>T", lambda: VP_.b(5000), ValueError, r"t must lie in \[0, 1000\]"),
    ("VP.a nan", lambda: VP_.a(nan), ValueError, "t must lie in"),
    ("VP.a None", lambda: VP_.a(None), TypeError, "t must be a real number"),
    ("VP.a complex", lambda: VP_.a(1 + 2j), TypeError, "t must be a real number"),
    ("VP.da bool", lambda: VP_.da(True), TypeError, "not a bool"),
    ("VE.b t<0", lambda: VE_.b(-1.0), ValueError, r"t must lie in \[0, inf\)"),
    ("Flow.a t>1", lambda: FL.a(1.5), ValueError, r"t must lie in \[0, 1\]"),
    ("time_grid steps=0", lambda: VP_.time_grid(0), ValueError, "steps must be"),
    ("alpha_bar nan", lambda: VP_.alpha_bar(nan), ValueError, "step k must be an integer"),
    ("beta bool", lambda: VP_.beta(True), ValueError, "step k must be an integer"),
    ("convert src", lambda: ivd.processes.convert(X, "bad", "x0", X, 10.0, VP_), ValueError,
     "src must be one of"),
    ("convert process None", lambda: ivd.processes.convert(X, "eps", "x0", X, 10.0, None),
     TypeError, "process must be"),
    ("convert t", lambda: ivd.processes.convert(X, "eps", "x0", X, -3.0, VP_), ValueError,
     "t must lie in"),
    ("reexpress model None", lambda: ivd.processes.reexpress(None, FL), TypeError,
     "model must be a ScoreModel"),
    ("reexpress process str", lambda: ivd.processes.reexpress(P_VP, "flow"), TypeError,
     "process must be"),
    ("predict kind", lambda: ivd.processes.predict(P_VP, X, 10.0, "bad"), ValueError,
     "kind must be one of"),
    ("predict model", lambda: ivd.processes.predict(None, X, 10.0, "x0"), TypeError,
     "model must be a ScoreModel"),
    # priors
    ("prior t=True", lambda: P_VP(X, True), TypeError, "not a bool"),
    ("prior t>T", lambda: P_VP(X, 2000.0), ValueError, "t must lie in"),
    ("prior x_t list", lambda: P_VP([0.0] * D, 10.0), TypeError, "x_t must be an array"),
    ("prior x_t int", lambda: P_VP(X.astype(int), 10.0), TypeError, "x_t must have a real"),
    ("prior.vjp cotangent int", lambda: P_VP.vjp(X, 10.0, X.astype(int)), TypeError,
     "cotangent must have a real"),
    ("GaussianPrior process", lambda: ivd.priors.GaussianPrior(np.zeros(D), np.eye(D),
                                                               process=None), TypeError,
     "process must be"),
    ("GaussianPrior prediction", lambda: ivd.priors.GaussianPrior(
        np.zeros(D), np.eye(D), process=VP_, prediction="bad"), ValueError,
     "prediction must be one of"),
    ("ExactLikelihood A nan", lambda: ivd.priors.ExactLikelihood(P_VP, np.full((2, D), nan), Y,
                                                                 0.1), ValueError,
     "A must be finite"),
    ("ExactLikelihood y inf", lambda: ivd.priors.ExactLikelihood(P_VP, np.eye(2, D),
                                                                 np.array([inf, 0.0]), 0.1),
     ValueError, "y must be finite"),
    ("ExactLikelihood y complex", lambda: ivd.priors.ExactLikelihood(
        P_VP, np.eye(2, D), Y.astype(complex), 0.1), TypeError, "y must have a real dtype"),
    ("ExactLikelihood sigma_y bool", lambda: ivd.priors.ExactLikelihood(P_VP, np.eye(2, D), Y,
                                                                        True), TypeError,
     "sigma_y"),
    # likelihoods
    ("DMPS sigma_y bool", lambda: ivd.likelihoods.DMPS(OP, Y, True, VP_), TypeError, "sigma_y"),
    ("DMPS sigma_y 0", lambda: ivd.likelihoods.DMPS(OP, Y, 0.0, VP_), ValueError, "sigma_y"),
    ("DMPS y inf", lambda: ivd.likelihoods.DMPS(OP, np.array([inf, 0.0]), 0.1, VP_), ValueError,
     "y must be finite"),
    ("DMPS y None", lambda: ivd.likelihoods.DMPS(OP, None, 0.1, VP_), TypeError,
     "y must be an array"),
    ("DMPS.score x_t shape", lambda: ivd.likelihoods.DMPS(OP, Y, 0.1, VP_).score(
        np.zeros((3, 7)), 10.0), ValueError, r"x_t must have shape \(\*batch, 4\)"),
    ("DMPS.score t", lambda: ivd.likelihoods.DMPS(OP, Y, 0.1, VP_).score(X, -1.0), ValueError,
     "t must lie in"),
    ("ALD in_shape str", lambda: ivd.likelihoods.ALD(A, Y, 0.1, VE_, in_shape="x"), TypeError,
     "in_shape must be a tuple"),
    ("ALD sigma bool", lambda: ivd.likelihoods.ALD(A, Y, True, VE_), TypeError, "sigma"),
    ("QuantizedDiagonal lower nan", lambda: ivd.likelihoods.QuantizedDiagonal(
        A, np.array([nan, 0.0]), HI, 0.1, VE_), ValueError, "lower must not contain NaN"),
    ("DPS zeta bool", lambda: ivd.likelihoods.DPS(OP, Y, P_VP, zeta=True), TypeError, "zeta"),
    ("PiGDM sigma_y -1", lambda: ivd.likelihoods.PiGDM(OP, Y, -1.0, P_VP), ValueError,
     "sigma_y"),
    # measurements
    ("GaussianNoise sigma bool", lambda: ivd.measurements.GaussianNoise(True), TypeError,
     "sigma"),
    ("Quantizer levels str", lambda: ivd.measurements.Quantizer(np.array([0.0]), "x"),
     TypeError, "levels must be"),
    ("measure x nan", lambda: ivd.measurements.measure(OP, np.full((3, D), nan), rng=0),
     ValueError, "x must be finite"),
    ("measure noise str", lambda: ivd.measurements.measure(OP, X, noise="x", rng=0), TypeError,
     "noise must be"),
    ("measure noise <0", lambda: ivd.measurements.measure(OP, X, noise=-1.0, rng=0), ValueError,
     "noise must be"),
    ("measure rng str", lambda: ivd.measurements.measure(OP, X, noise=0.1, rng="x"), TypeError,
     "rng must be"),
    ("measure rng bool", lambda: ivd.measurements.measure(OP, X, noise=0.1, rng=True),
     TypeError, "rng must be"),
    # samplers
    ("ancestral x_init inf", lambda: ivd.samplers.ancestral(P_VP, np.full((3, D), inf),
                                                            steps=3, rng=0), ValueError,
     "x_init must be finite"),
    ("ancestral x_init nan", lambda: ivd.samplers.ancestral(P_VP, np.full((3, D), nan),
                                                            steps=3, rng=0), ValueError,
     "x_init must not contain NaN"),
    # methods: the model, the measurement, the start
    ("dmps model None", lambda: M.dmps(None, OP, Y, 0.1, **KW), TypeError,
     "model must be a ScoreModel"),
    ("dmps model str", lambda: M.dmps("m", OP, Y, 0.1, **KW), TypeError,
     "model must be a ScoreModel"),
    ("dmps op None", lambda: M.dmps(P_VP, None, Y, 0.1, **KW), TypeError, "op must be"),
    ("dmps y list", lambda: M.dmps(P_VP, OP, [0.5, -0.5], 0.1, **KW), TypeError,
     "y must be an array"),
    ("dmps y int", lambda: M.dmps(P_VP, OP, np.array([1, 0]), 0.1, **KW), TypeError,
     "y must have a real floating dtype"),
    ("dmps y shape", lambda: M.dmps(P_VP, OP, np.zeros(7), 0.1, **KW), ValueError,
     r"y must have shape \(\*batch, 2\)"),
    ("dmps y inf", lambda: M.dmps(P_VP, OP, np.array([inf, 0.0]), 0.1, **KW), ValueError,
     "y must be finite"),
    ("dmps x_init shape", lambda: M.dmps(P_VP, OP, Y, 0.1, x_init=np.zeros((3, 7)), **KW),
     ValueError, r"x_init must have shape \(\*batch, 4\)"),
    ("dmps x_init -inf", lambda: M.dmps(P_VP, OP, Y, 0.1, x_init=np.full((3, D), -inf), **KW),
     ValueError, "x_init must be finite"),
    ("dmps sigma_y 0", lambda: M.dmps(P_VP, OP, Y, 0.0, **KW), ValueError, "sigma_y must be > 0"),
    ("dmps rng str", lambda: M.dmps(P_VP, OP, Y, 0.1, rng="x", steps=3), TypeError,
     "rng must be"),
    ("dmps return_info str", lambda: M.dmps(P_VP, OP, Y, 0.1, return_info="yes", **KW),
     TypeError, "return_info must be True or False"),
    ("dmps clip_x0 reversed", lambda: M.dmps(P_VP, OP, Y, 0.1, clip_x0=(1.0, -1.0), **KW),
     ValueError, "clip_x0 must have low < high"),
    ("dmps guidance_at", lambda: M.dmps(P_VP, OP, Y, 0.1, guidance_at="x0", **KW), ValueError,
     "guidance_at must be one of"),
    ("dmps steps>T", lambda: M.dmps(P_VP, OP, Y, 0.1, rng=0, steps=5000), ValueError,
     "steps must be at most 1000"),
    ("dps zeta 0", lambda: M.dps(P_VP, OP, Y, zeta=0.0, **KW), ValueError, "zeta must be > 0"),
    ("dps n=-1", lambda: M.dps(P_VP, OP, Y, n=-1, **KW), ValueError,
     "n must be a positive integer"),
    ("pigdm eta>1", lambda: M.pigdm(P_VP, OP, Y, 0.1, eta=1.5, **KW), ValueError,
     r"eta must lie in \[0, 1\]"),
    ("pigdm eta<0", lambda: M.pigdm(P_VP, OP, Y, 0.1, eta=-1.0, **KW), ValueError, "eta"),
    ("dmps_flow steps=0", lambda: M.dmps_flow(P_FL, OP, Y, 0.1, rng=0, steps=0), ValueError,
     "steps must be a positive integer"),
    ("dmps_flow t_start=1", lambda: M.dmps_flow(P_FL, OP, Y, 0.1, t_start=1.0, **KW),
     ValueError, r"t_start must lie in \(0, 1\)"),
    ("dps_flow steps=1", lambda: M.dps_flow(P_FL, OP, Y, rng=0, steps=1), ValueError,
     "steps must be >= 2 when t_start is not given"),
    ("ot_ode t_start nan", lambda: M.ot_ode(P_FL, OP, Y, 0.1, t_start=nan, **KW), ValueError,
     "t_start must be finite"),
    ("ot_ode n=2.5", lambda: M.ot_ode(P_FL, OP, Y, 0.1, n=2.5, **KW), ValueError,
     "n must be a positive integer"),
    ("ot_ode x_init shape", lambda: M.ot_ode(P_FL, OP, Y, 0.1, x_init=np.zeros((3, 7)), **KW),
     ValueError, "x_init must have shape"),
    ("qcs_sgm gamma<0", lambda: M.qcs_sgm(P_VE, A, LO, HI, 0.1, gamma=-1.0, **KQ), ValueError,
     "gamma must be >= 0"),
    ("qcs_sgm eps=0", lambda: M.qcs_sgm(P_VE, A, LO, HI, 0.1, eps=0.0, **KQ), ValueError,
     "eps must be > 0"),
    ("qcs_sgm steps_each=2.5", lambda: M.qcs_sgm(P_VE, A, LO, HI, 0.1, steps_each=2.5, **KQ),
     ValueError, "steps_each must be a positive integer"),
    ("qcs_sgm lower None", lambda: M.qcs_sgm(P_VE, A, None, HI, 0.1, **KQ), TypeError,
     "lower must be an array"),
    ("qcs_sgm A None", lambda: M.qcs_sgm(P_VE, None, LO, HI, 0.1, **KQ), TypeError,
     "A must be an array"),
    ("qcs_sgm A nan", lambda: M.qcs_sgm(P_VE, np.full((2, D), nan), LO, HI, 0.1, **KQ),
     ValueError, "A must hold finite numbers"),
    ("qcs_sgm in_shape 2.5", lambda: M.qcs_sgm(P_VE, A, LO, HI, 0.1, in_shape=(2, 2.5), **KQ),
     ValueError, r"in_shape\[1\] must be a positive integer"),
    ("qcs_sgm x_init shape", lambda: M.qcs_sgm(P_VE, A, LO, HI, 0.1, x_init=np.zeros((3, 7)),
                                               **KQ), ValueError, "x_init must have shape"),
    ("qcs_sgm_plus iters=0", lambda: M.qcs_sgm_plus(P_VE, A, LO, HI, 0.1, iters=0, **KQ),
     ValueError, "iters must be a positive integer"),
    ("qcs_sgm_plus damping=1", lambda: M.qcs_sgm_plus(P_VE, A, LO, HI, 0.1, damping=1.0, **KQ),
     ValueError, r"damping must lie in \[0, 1\)"),
    ("ald_cs y nan", lambda: M.ald_cs(P_VE, A, np.array([nan, 0.0]), 0.1, **KQ), ValueError,
     "y must be finite"),
    ("ald_cs sigma<0", lambda: M.ald_cs(P_VE, A, Y, -0.1, **KQ), ValueError, "sigma must be > 0"),
    # baselines and metrics
    ("lasso lam bool", lambda: ivd.baselines.lasso(np.eye(2), Y, True, iters=2), TypeError,
     "lam"),
    ("lasso y inf", lambda: ivd.baselines.lasso(np.eye(2), np.array([inf, 0.0]), 0.1, iters=2),
     ValueError, "y must be finite"),
    ("tv lam -1", lambda: ivd.baselines.tv(ivd.operators.Inpainting(np.ones((4, 4), bool)),
                                           np.zeros((4, 4)), -1.0, iters=2), ValueError, "lam"),
    ("biht y_sign None", lambda: ivd.baselines.biht(A, None, 2, iters=2), TypeError,
     "y_sign must be an array"),
    ("biht y_sign shape", lambda: ivd.baselines.biht(A, np.ones(7), 2, iters=2), ValueError,
     "y_sign must have shape"),
    ("psnr data_range bool", lambda: ivd.metrics.psnr(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)),
                                                       True), TypeError, "data_range"),
    ("sliced_wasserstein n_projections=0", lambda: ivd.metrics.sliced_wasserstein(
        X, X, n_projections=0), ValueError, "n_projections must be a positive integer"),
    ("sliced_wasserstein n_projections=2.5", lambda: ivd.metrics.sliced_wasserstein(
        X, X, n_projections=2.5), ValueError, "n_projections"),
    ("sliced_wasserstein rng str", lambda: ivd.metrics.sliced_wasserstein(X, X, rng="x"),
     TypeError, "rng must be"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_is_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("name, bad", [
    ("n", 2.5), ("n", 0), ("n", True), ("steps", 0), ("steps", -3), ("steps", "3"),
    ("steps_each", 2.5), ("iters", None), ("lam", -1.0), ("lam", inf), ("zeta", 0.0),
    ("gamma", -0.5), ("eps", -1e-4), ("eta", 2.0), ("damping", -0.1), ("t_start", 0.0),
    ("t_start", 1.0), ("sigma_y", 0.0), ("sigma", nan), ("clip_x0", (0.0,)),
    ("guidance_at", None), ("progress", "no"), ("final_denoise", 1), ("in_shape", "28"),
])
def test_every_rule_names_its_argument(name, bad):
    with pytest.raises((ValueError, TypeError), match=name):
        check_arguments(**{name: bad})


def test_rules_let_the_defaults_through():
    # the paper defaults of every recipe pass their own rules
    defaults = {"n": None, "steps": 1000, "steps_each": 5, "iters": 5, "lam": 1.75, "zeta": 0.3,
                "gamma": 0.5, "eps": 2e-4, "eta": 1.0, "damping": 0.02, "t_start": None,
                "sigma_y": 0.05, "sigma": 0.05, "clip_x0": (-1.0, 1.0), "guidance_at": "x_t",
                "progress": False, "final_denoise": True, "in_shape": (1, 28, 28),
                "x_init": None}
    checked = check_arguments(**defaults)
    assert checked["in_shape"] == (1, 28, 28) and checked["steps"] == 1000
    assert set(defaults) <= set(RULES)


def test_an_unknown_argument_name_is_a_programming_error():
    with pytest.raises(KeyError):
        check_arguments(no_such_hyperparameter=1)


def test_mixed_backends_are_named(xp):
    if xp.__name__.endswith("numpy"):
        pytest.skip("needs a second backend")
    y = xp.asarray([0.5, -0.5], dtype=xp.float64)
    with pytest.raises(TypeError, match="all arrays must come from one backend"):
        M.dmps(P_VP, OP, Y, 0.1, x_init=xp.zeros((3, D), dtype=xp.float64), **KW)
    with pytest.raises(TypeError, match="one backend"):
        ivd.likelihoods.ALD(A, y, 0.1, VE_)


def test_non_finite_inputs_on_every_backend(xp):
    prior = ivd.priors.GaussianPrior(xp.zeros(D, dtype=xp.float64),
                                     xp.eye(D, dtype=xp.float64), process=VP_)
    op = ivd.operators.DenseMatrix(xp.asarray(np.eye(2, D), dtype=xp.float64))
    y = xp.asarray([0.5, -inf], dtype=xp.float64)
    with pytest.raises(ValueError, match="y must be finite"):
        M.dmps(prior, op, y, 0.1, **KW)
    with pytest.raises(ValueError, match="x_init must be finite"):
        ivd.samplers.ddim(prior, xp.full((2, D), inf, dtype=xp.float64), steps=3)
