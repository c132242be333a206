"""Integrators: each takes ``(model, x_init, *, guidance=None, scale=1.0, steps=..., rng=None,
progress=False, callback=None, ...)`` and returns the final sample in ``x_init``'s
namespace, device and dtype.

==============  ===========================  ======================================
integrator      process                      guidance weighting
==============  ===========================  ======================================
``ancestral``   VP (DDPM)                    :math:`\\lambda\\beta_k/\\sqrt{\\alpha_k}\\, g`
``ddim``        VP                           :math:`\\hat\\varepsilon - \\lambda b_t g`
``langevin``    VE with levels (NCSNv2)      :math:`\\alpha_i w_i g`, fixed or norm-matched
``sde``         any                          score :math:`s + \\lambda g`
``ode``         any                          score :math:`s + \\lambda g`
==============  ===========================  ======================================

Models trained under another process are wrapped with :class:`invdiff.processes.reexpress`.
"""

from .ancestral import ancestral
from .ddim import ddim
from .langevin import langevin
from .ode import ode
from .sde import sde

__all__ = ["ancestral", "ddim", "langevin", "sde", "ode"]
