r"""Linear operators with an implicit SVD: the :math:`A` of :math:`y = A x + n`.

Every operator is an :class:`SVDOperator`: ``apply``/``adjoint`` plus the thin SVD
:math:`A = U \mathrm{diag}(s) V^\top` through ``Vt``, ``V``, ``Ut``, ``U``, ``singulars``,
``rank`` and ``pinv``, so that likelihoods such as DMPS (Meng & Kabashima) need only
elementwise work in the spectral domain. No image operator forms a dense matrix.

=============================  =======================================================
image operators                on ``(*b, C, H, W)``
=============================  =======================================================
:class:`Identity`              denoising
:class:`Inpainting`            boolean mask (random pixels, box, any), shared or per channel
:class:`SuperResolution`       block average or strided bicubic (``a = -0.5``)
:class:`SeparableBlur`         zero-padded separable blur (uniform, Gaussian presets)
:class:`CircularBlur`          any 2-D kernel, periodic, FFT (real orthogonal U, V)
:class:`Colorization`          mean of the color channels
=============================  =======================================================

=================================  ===================================================
matrices                           on ``(*b, N)``
=================================  ===================================================
:class:`DenseMatrix`               explicit matrix, cached SVD and ``gram_eigh``
:class:`SubsampledOrthogonal`      rows of an orthonormal DCT / Walsh–Hadamard transform
:func:`gaussian_matrix`            i.i.d. :math:`\mathcal N(0, 1/M)`
:func:`ill_conditioned_matrix`     Haar factors, geometric singular values
:func:`correlated_matrix`          :math:`\rho^{|i-j|}` correlation on both sides
=================================  ===================================================

Your own operator: subclass :class:`SVDOperator` and implement its public hooks
(``factors``, ``apply_Vt``, ``apply_V``, ``apply_Ut``, ``apply_U``), then test it with
:func:`check_svd`.

Examples
--------
>>> import numpy as np
>>> import invdiff as ivd
>>> op = ivd.operators.SeparableBlur.gaussian((3, 16, 16), sigma=1.0, size=7)
>>> x = ivd.random.Generator(0).normal((2, 3, 16, 16), like=np.zeros(1))
>>> bool(np.allclose(op.U(op.singulars * op.Vt(x)), op.apply(x)))
True
"""

from ._base import LinearOperator, SVDOperator
from ._check import check_svd
from .fourier import CircularBlur
from .image import Colorization, Identity, Inpainting
from .matrices import (
    DenseMatrix,
    SubsampledOrthogonal,
    correlated_matrix,
    gaussian_matrix,
    ill_conditioned_matrix,
)
from .separable import SeparableBlur, SuperResolution, bicubic_weight

__all__ = [
    "LinearOperator",
    "SVDOperator",
    "Identity",
    "Inpainting",
    "SuperResolution",
    "SeparableBlur",
    "CircularBlur",
    "Colorization",
    "DenseMatrix",
    "SubsampledOrthogonal",
    "gaussian_matrix",
    "ill_conditioned_matrix",
    "correlated_matrix",
    "bicubic_weight",
    "check_svd",
]
