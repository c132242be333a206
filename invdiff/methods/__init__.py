r"""Published posterior-sampling methods, each with its paper's defaults.

A method is a recipe: a likelihood from :mod:`invdiff.likelihoods`, an integrator from
:mod:`invdiff.samplers`, the process that integrator needs (the model is re-expressed
with :class:`invdiff.processes.reexpress` when it was trained under another one) and the
hyperparameters of the paper. Every function takes a ScoreModel, the measurement and an
``rng`` and returns the samples; with ``return_info=True`` it returns ``(samples, info)``
where ``info`` holds the number of network evaluations (``"nfe"``), the wall time
(``"seconds"``), the settings used and, with ``record_guidance=True``, the per-step
guidance norms (``"guidance_norm"``, one row per step, one column per sample). The
operator may be a plain ``(M, N)`` matrix (or a :class:`~invdiff.operators.DenseMatrix`)
acting on the flattened signal; ``in_shape=(C, H, W)`` then says how its columns map to
the pixels of an image prior (row-major).

=============  ===========================  ===============================================
method         integrator                    defaults (paper)
=============  ===========================  ===============================================
dmps           DDPM ancestral, 1000 steps    λ = 1.75 (Meng & Kabashima, Alg. 1)
dmps_flow      flow ODE, Euler, 50 steps     λ = 2, start t0 = 1 - 1/50 (Alg. 2)
dps            DDPM ancestral, 1000 steps    ζ = 0.3 step on ‖y - A x̂0‖ (Chung et al.)
dps_flow       flow ODE, Euler, 50 steps     DPS's step after each Euler step, ζ = 3
pigdm          DDIM, 100 steps, η = 1        ΠGDM (Song et al. 2023), NVlabs' weighting
ot_ode         flow ODE, Euler, 50 steps     ΠGDM in the flow, t0 = 0.8, Tikhonov start
qcs_sgm        annealed Langevin              ε = 2e-4, K = 5, γ = 1 (Meng & Kabashima 2023)
qcs_sgm_plus   annealed Langevin + EP         γ = 0.5 norm-matched, 5 EP iterations
ald_cs         annealed Langevin              Jalal et al. 2021, unquantized Gaussian term
ddrm           DDIM in the SVD, 20 steps     η = 0.85, η_b = 1 (Kawar et al. 2022, Eq. 7)
ddnm           DDIM, 100 steps, η = 0.85     null-space projection; DDNM+ Σ_t when σ_y > 0
mcgdiff        SMC over DDIM, 100 steps      64 particles, η = 1, κ = 1e-4 (Cardoso et al.)
diffpir        DDPM, 100 steps (quad)         λ = 1.75 (code's 7), ζ = 0.3, exact SVD prox
daps           200 levels × 5 ODE steps       100 Langevin steps, η = 1e-4 (Zhang et al. 2025)
red_diff       Adam, 1000 steps               λ = 0.25, lr = 0.1, ω_t = b_t/a_t (Mardani et al.)
=============  ===========================  ===============================================
"""

from .daps import daps
from .ddpm import dmps, dps, pigdm
from .diffpir import diffpir
from .flow import dmps_flow, dps_flow, ot_ode
from .langevin import ald_cs, qcs_sgm, qcs_sgm_plus
from .red_diff import red_diff
from .svd import ddnm, ddrm, mcgdiff

__all__ = [
    "dmps",
    "dmps_flow",
    "dps",
    "dps_flow",
    "pigdm",
    "ot_ode",
    "qcs_sgm",
    "qcs_sgm_plus",
    "ald_cs",
    "ddrm",
    "ddnm",
    "mcgdiff",
    "diffpir",
    "daps",
    "red_diff",
]
