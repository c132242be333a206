r"""Likelihood scores :math:`\nabla_{x_t}\log\tilde p(y \mid x_t)` (ALGORITHMS.md §2–§5).

===========================  ==========================================================
:class:`DMPS`                closed-form pseudo-likelihood via the operator's SVD
                             (Meng & Kabashima, ACML 2024)
:class:`QuantizedDiagonal`   QCS-SGM, quantized measurements, :math:`AA^\top` diagonal
                             (Meng & Kabashima, ICLR 2023)
:class:`QuantizedEP`         QCS-SGM+, expectation propagation for general :math:`A`
                             (Meng & Kabashima, AAAI 2024)
:class:`DPS`                 :math:`-\zeta\nabla\|y - A\hat x_0\|` (Chung et al., ICLR 2023)
:class:`PiGDM`               ΠGDM (Song et al., ICLR 2023)
:class:`ALD`                 Jalal et al.'s annealed linear-CS term (NeurIPS 2021)
===========================  ==========================================================

Every object has ``score(x_t, t)`` in the namespace, device and dtype of ``x_t``; DMPS and
the quantized likelihoods also have ``log_likelihood(x_t, t)``, the closed form whose
gradient the score is. DPS and PiGDM set ``needs_model = True`` and provide
``score_and_eps(x_t, t)`` (guidance and the network's eps from one pass).

Examples
--------
>>> import numpy as np
>>> import invdiff as ivd
>>> op = ivd.operators.Identity((3,))
>>> lik = ivd.likelihoods.DMPS(op, np.ones(3), sigma_y=0.5, process=ivd.processes.VP.linear())
>>> lik.score(np.zeros((2, 3)), 100.0).shape
(2, 3)
"""

from .ald import ALD
from .dmps import DMPS
from .ep import QuantizedEP
from .quantized import QuantizedDiagonal
from .tweedie import DPS, PiGDM

__all__ = ["DMPS", "QuantizedDiagonal", "QuantizedEP", "DPS", "PiGDM", "ALD"]
