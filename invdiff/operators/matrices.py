r"""Matrices acting on ``(*batch, N)``: :class:`DenseMatrix` (explicit thin SVD),
:class:`SubsampledOrthogonal` (fast row-orthogonal transforms) and the random matrices
of the compressed-sensing experiments (QCS-SGM, QCS-SGM+): :func:`gaussian_matrix`,
:func:`ill_conditioned_matrix`, :func:`correlated_matrix`.
"""

from __future__ import annotations

import math
import numbers

from .._array_api import (
    check_at_least,
    check_finite,
    check_floating,
    device_of,
    index_dtype,
    namespace,
    wide_dtypes,
)
from .._dct import DCTPlan
from ._base import SVDOperator, _home, _scatter

__all__ = [
    "DenseMatrix",
    "SubsampledOrthogonal",
    "gaussian_matrix",
    "ill_conditioned_matrix",
    "correlated_matrix",
]


class DenseMatrix(SVDOperator):
    r"""An explicit ``(M, N)`` matrix with its thin SVD, computed once and cached.

    Parameters
    ----------
    A : array of shape (M, N)
        Real floating matrix in any namespace; the operator lives there. Available as
        the attribute ``A``.
    threshold : float, default 0.0
        Singular values below it are dropped. Values below the numerical rank tolerance
        :math:`s_{max} \max(M, N)\,\epsilon` (``np.linalg.matrix_rank``'s, with the
        machine epsilon of ``A.dtype``) are always dropped; when anything is dropped,
        :meth:`apply` uses the truncated matrix so that ``apply(x) == U(s * Vt(x))``.

    Notes
    -----
    ``xp.linalg.svd`` in float64 (float32 on a device without it):
    :math:`A = U_r \mathrm{diag}(s) V_r^\top` with the singular values in decreasing order.
    :meth:`gram_eigh` gives the eigendecomposition of :math:`A A^\top` that QCS-SGM+'s
    expectation propagation precomputes.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> A = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    >>> op = ivd.operators.DenseMatrix(A)
    >>> op.singulars.tolist(), op.rank
    ([3.0, 2.0], 2)
    >>> op.pinv(np.array([3.0, 2.0])).tolist()
    [1.0, 0.0, 1.0]
    """

    _source_name = "A"

    def __init__(self, A, *, threshold: float = 0.0):
        check_floating("A", A)
        if A.ndim != 2:
            raise ValueError(f"A must be a 2-D matrix (M, N); received shape {tuple(A.shape)}")
        xp = namespace(A=A)
        check_finite("A", A, xp)
        if not bool(xp.all(xp.isfinite(A))):
            raise ValueError("A must hold finite numbers; received infinite entries")
        self.A = A
        self._source = A
        M, N = A.shape
        super().__init__((N,), (M,), threshold=threshold)
        self._gram = None

    def _build64(self, xp, device):
        A = xp.astype(self.A, wide_dtypes(xp, device)[0])
        U, s, Vt = xp.linalg.svd(A, full_matrices=False)
        eps = xp.finfo(self.A.dtype).eps
        tol = max(float(s[0]) * max(A.shape) * eps, 0.0) if s.shape[0] else 0.0
        keep = (s > tol) & (s >= self.threshold)
        r = int(xp.sum(xp.astype(keep, index_dtype(xp, device))))  # a prefix: s is decreasing
        U, s, Vt = U[:, :r], s[:r], Vt[:r, :]
        if r < min(A.shape):
            A = (U * s[None, :]) @ Vt
        return {"s": s, "U": U, "Ut": U.T, "V": Vt.T, "Vt": Vt, "A": A, "At": A.T}

    def _Vt(self, xp, f, x):
        return x @ f["V"]

    def _V(self, xp, f, z):
        return z @ f["Vt"]

    def _Ut(self, xp, f, y):
        return y @ f["U"]

    def _U(self, xp, f, w):
        return w @ f["Ut"]

    def _apply(self, xp, f, x):
        return x @ f["At"]

    def _adjoint(self, xp, f, y):
        return y @ f["A"]

    def gram_eigh(self):
        r"""Eigendecomposition :math:`A A^\top = W \mathrm{diag}(d) W^\top`, cached.

        Returns
        -------
        d : array of shape (M,)
            Eigenvalues in increasing order, clipped at 0 (rounding can make them
            slightly negative when :math:`M > N`).
        W : array of shape (M, M)
            Orthonormal eigenvectors (columns), in ``A``'s namespace and dtype.

        Notes
        -----
        Computed in float64 (float32 on a device without it) with ``xp.linalg.eigh``.
        QCS-SGM+ (ALGORITHMS.md §5) uses it to make each EP iteration two matrix–vector
        products instead of an M x M solve.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> A = np.array([[1.0, 1.0], [0.0, 2.0], [1.0, 0.0]])
        >>> d, W = ivd.operators.DenseMatrix(A).gram_eigh()
        >>> bool(np.allclose(W @ np.diag(d) @ W.T, A @ A.T)), float(d[0])
        (True, 0.0)
        """
        if self._gram is None:
            xp = namespace(A=self.A)
            A = xp.astype(self.A, wide_dtypes(xp, device_of(self.A))[0])
            d, W = xp.linalg.eigh(A @ A.T)
            d = xp.where(d > 0, d, xp.zeros_like(d))
            self._gram = (xp.astype(d, self.A.dtype), xp.astype(W, self.A.dtype))
        return self._gram

    def __repr__(self) -> str:
        M, N = self.A.shape
        return f"DenseMatrix(M={M}, N={N}, threshold={self.threshold})"


class SubsampledOrthogonal(SVDOperator):
    r"""Rows of a fast orthonormal transform, :math:`A = S\,\Phi`, with :math:`AA^\top = I`.

    Parameters
    ----------
    N : int
        Signal length; inputs are ``(*batch, N)``.
    rows : int or sequence of int
        The kept rows of :math:`\Phi` (distinct, in ``[0, N)``), in output order; or their
        number ``M``, drawn uniformly without replacement by ``rng`` (sorted).
    kind : {"dct", "hadamard"}, default "dct"
        :math:`\Phi` = orthonormal DCT-II (``scipy.fft.dct(norm="ortho")``) or the
        orthonormal Walsh–Hadamard matrix in natural (Sylvester) order (``N`` a power of 2).
    rng : invdiff.random.Generator, optional
        Used when ``rows`` is a number; default ``Generator(0)``, so the same rows each time.
    like : array, optional
        Home namespace of ``singulars`` (NumPy float64 by default); inputs of any
        namespace are accepted.

    Notes
    -----
    SVD: :math:`U = I_M`, :math:`s = \mathbf 1`, :math:`V^\top = S\Phi`; so ``Vt`` is
    :meth:`apply`, ``V`` the adjoint :math:`\Phi^\top S^\top` (zero-fill, inverse transform)
    and the pseudo-inverse equals the adjoint. Both transforms cost
    :math:`O(N \log N)` (an FFT or :math:`\log_2 N` butterflies); no matrix is formed.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.SubsampledOrthogonal(8, [0, 3, 5], kind="hadamard")
    >>> x = np.arange(8.0)
    >>> y = op.apply(x)
    >>> y.shape, bool(np.allclose(op.apply(op.adjoint(y)), y))
    ((3,), True)
    >>> ivd.operators.SubsampledOrthogonal(64, 16, kind="dct").rank
    16
    """

    def __init__(self, N: int, rows, kind: str = "dct", *, rng=None, like=None):
        if isinstance(N, bool) or int(N) != N or N < 1:
            raise ValueError(f"N must be a positive integer; received {N!r}")
        N = int(N)
        if kind not in ("dct", "hadamard"):
            raise ValueError(f"kind must be 'dct' or 'hadamard'; received {kind!r}")
        if kind == "hadamard" and N & (N - 1):
            raise ValueError(f"kind='hadamard' needs N a power of 2; received N={N}")
        self.kind = kind
        self.rows = _rows(N, rows, rng, like)
        super().__init__((N,), (len(self.rows),), like=like)

    def _build64(self, xp, device):
        N, M = self.in_shape[0], len(self.rows)
        inv = [M] * N
        for m, j in enumerate(self.rows):
            inv[j] = m
        return {"s": xp.ones(M, dtype=wide_dtypes(xp, device)[0], device=device),
                "rows": xp.asarray(self.rows, dtype=index_dtype(xp, device), device=device),
                "inv": xp.asarray(inv, dtype=index_dtype(xp, device), device=device)}

    def _factors(self, xp, device, dtype) -> dict:
        f = super()._factors(xp, device, dtype)
        if self.kind == "dct" and "dct" not in f:
            # one plan per (namespace, device, dtype): its twiddles are in the input's dtype
            f["dct"] = DCTPlan(self.in_shape[0], xp.zeros((), dtype=dtype, device=device), xp)
        return f

    def _transform(self, xp, f, x):
        return f["dct"].forward(x) if self.kind == "dct" else _fwht(xp, x)

    def _inverse(self, xp, f, X):
        return f["dct"].inverse(X) if self.kind == "dct" else _fwht(xp, X)

    def _Vt(self, xp, f, x):
        return xp.take(self._transform(xp, f, x), f["rows"], axis=-1)

    def _V(self, xp, f, z):
        return self._inverse(xp, f, _scatter(xp, z, f["inv"]))

    def _Ut(self, xp, f, y):
        return y * 1.0

    _U = _Ut
    _apply = _Vt
    _adjoint = _V

    def __repr__(self) -> str:
        return f"SubsampledOrthogonal(N={self.in_shape[0]}, M={len(self.rows)}, kind={self.kind!r})"


def _fwht(xp, x):
    r"""Orthonormal fast Walsh–Hadamard transform along the last axis (length a power of 2).

    Natural (Sylvester) order,
    :math:`H_{2n} = \begin{pmatrix} H_n & H_n \\ H_n & -H_n \end{pmatrix} / \sqrt2`, in
    :math:`\log_2 N` butterfly stages; it is its own inverse.
    """
    n = x.shape[-1]
    batch = tuple(x.shape[:-1])
    h = 1
    while h < n:
        y = xp.reshape(x, (*batch, n // (2 * h), 2, h))
        a, b = y[..., 0, :], y[..., 1, :]
        x = xp.reshape(xp.stack([a + b, a - b], axis=-2), (*batch, n))
        h *= 2
    return x / math.sqrt(n)


def _rows(N: int, rows, rng, like) -> tuple[int, ...]:
    if isinstance(rows, bool):
        raise TypeError(f"rows must be an integer or a sequence of integers; received {rows!r}")
    if isinstance(rows, numbers.Integral) or (hasattr(rows, "shape") and len(rows.shape) == 0):
        M = int(rows)
        if not 1 <= M <= N:
            raise ValueError(f"rows (the number M of rows) must be in 1..N={N}; received {M}")
        from ..random import Generator

        rng = Generator(0) if rng is None else rng
        xp, device, dtype = _home(like)
        perm = rng.permutation(N, like=xp.zeros((), dtype=dtype, device=device))
        picked = xp.sort(perm[:M])
        return tuple(int(picked[i]) for i in range(M))
    try:
        out = tuple(int(r) for r in (_as_list(rows)))
    except (TypeError, ValueError):
        raise TypeError("rows must be an integer or a sequence of integers; "
                        f"received {type(rows).__name__}") from None
    if not out:
        raise ValueError("rows must name at least one row; received an empty sequence")
    bad = [r for r in out if not 0 <= r < N]
    if bad:
        raise ValueError(f"rows must lie in [0, {N}); received {bad[:5]}")
    if len(set(out)) != len(out):
        raise ValueError("rows must be distinct; received repeated indices")
    return out


def _as_list(rows):
    if hasattr(rows, "shape"):  # an array of any backend
        if len(rows.shape) != 1:
            raise ValueError(f"rows must be 1-D; received shape {tuple(rows.shape)}")
        return [rows[i] for i in range(rows.shape[0])]
    return rows


# -- random matrices -----------------------------------------------------------------------------
def _dims(M, N) -> tuple[int, int]:
    for name, v in (("M", M), ("N", N)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer; received {v!r}")
    return int(M), int(N)


def gaussian_matrix(M: int, N: int, rng, *, like=None):
    r"""I.i.d. Gaussian sensing matrix, entries :math:`\mathcal N(0, 1/M)`.

    Parameters
    ----------
    M, N : int
        Number of measurements and signal length.
    rng : invdiff.random.Generator
    like : array, optional
        Namespace, device and floating dtype of the result (NumPy float64 by default).

    Notes
    -----
    The QCS-SGM setting: columns have unit expected norm and
    :math:`\mathbb E\|A\|_F^2 = N`; :math:`A A^\top \approx (N/M) I` for :math:`N \gg M`.

    Examples
    --------
    >>> import invdiff as ivd
    >>> A = ivd.operators.gaussian_matrix(200, 784, rng=ivd.random.Generator(0))
    >>> A.shape, 0.9 < float((A ** 2).sum(axis=0).mean()) < 1.1
    ((200, 784), True)
    """
    M, N = _dims(M, N)
    xp, device, dtype = _home(like)
    like0 = xp.zeros((), dtype=dtype, device=device)
    return rng.normal((M, N), like=like0) / math.sqrt(M)


def _haar(xp, rng, n: int, k: int, device):
    """``n x k`` matrix with orthonormal columns, Haar distributed (QR with sign fix)."""
    like0 = xp.zeros((), dtype=wide_dtypes(xp, device)[0], device=device)
    Q, R = xp.linalg.qr(rng.normal((n, k), like=like0))
    d = xp.linalg.diagonal(R)
    return Q * xp.where(d < 0, -xp.ones_like(d), xp.ones_like(d))[None, :]


def ill_conditioned_matrix(M: int, N: int, cond: float, rng, *, like=None):
    r"""Haar-rotated matrix with geometric singular values and condition number ``cond``.

    .. math:: A = U\,\mathrm{diag}(d)\,V^\top,\qquad d_i \propto \mathrm{cond}^{-i/(K-1)},
              \quad i = 0..K-1,\ K = \min(M, N),\qquad \textstyle\sum_i d_i^2 = N,

    with :math:`U` (``M x K``) and :math:`V` (``N x K``) Haar distributed, so
    :math:`d_{max}/d_{min} = ` ``cond`` and :math:`\|A\|_F^2 = N` as for
    :func:`gaussian_matrix`.

    Parameters
    ----------
    M, N : int
    cond : float
        Condition number :math:`d_{max}/d_{min} \ge 1` (``1`` gives a scaled row-orthogonal
        matrix).
    rng : invdiff.random.Generator
    like : array, optional
        Namespace, device and floating dtype of the result (NumPy float64 by default).

    Notes
    -----
    QCS-SGM+ (Meng & Kabashima, AAAI 2024) sets :math:`d_i^2 \propto \kappa^{-i/M}`: its
    :math:`\kappa` is a ratio of *squared* singular values, and
    :math:`d_1^2/d_M^2 = \kappa^{(M-1)/M}`. Their :math:`\kappa` therefore corresponds
    to ``cond = kappa ** ((M - 1) / (2 * M))`` (about :math:`\sqrt\kappa`).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> A = ivd.operators.ill_conditioned_matrix(20, 50, cond=100.0, rng=ivd.random.Generator(0))
    >>> s = np.linalg.svd(A, compute_uv=False)
    >>> round(float(s[0] / s[-1]), 6), round(float((s ** 2).sum()), 6)
    (100.0, 50.0)
    """
    M, N = _dims(M, N)
    c = check_at_least("cond", cond, low=1.0)
    xp, device, dtype = _home(like)
    K = min(M, N)
    U = _haar(xp, rng, M, K, device)
    V = _haar(xp, rng, N, K, device)
    d = [c ** (-i / (K - 1)) if K > 1 else 1.0 for i in range(K)]
    norm = math.sqrt(N / math.fsum(v * v for v in d))
    d = xp.asarray([v * norm for v in d], dtype=U.dtype, device=device)
    return xp.astype((U * d[None, :]) @ V.T, dtype)


def _toeplitz_sqrt(xp, n: int, rho: float, device):
    """Symmetric square root of R_ij = rho^|i-j| (AR(1) correlation), through eigh."""
    i = xp.arange(n, device=device)
    k = xp.abs(i[:, None] - i[None, :])
    R = abs(rho) ** xp.astype(k, wide_dtypes(xp, device)[0])
    if rho < 0:
        R = xp.where(k % 2 == 1, -R, R)
    lam, Q = xp.linalg.eigh(R)
    lam = xp.where(lam > 0, lam, xp.zeros_like(lam))  # R is positive definite; clip rounding
    return (Q * xp.sqrt(lam)[None, :]) @ Q.T


def correlated_matrix(M: int, N: int, rho: float, rng, *, like=None):
    r"""Gaussian matrix with Toeplitz correlation :math:`\rho^{|i-j|}` on rows and columns.

    .. math:: A = R_M^{1/2}\, G\, R_N^{1/2} / \sqrt M, \qquad (R_n)_{ij} = \rho^{|i-j|},
              \quad G_{ij} \sim \mathcal N(0, 1)\ \text{i.i.d.}

    Parameters
    ----------
    M, N : int
    rho : float
        Correlation coefficient, :math:`|\rho| < 1`.
    rng : invdiff.random.Generator
    like : array, optional
        Namespace, device and floating dtype of the result (NumPy float64 by default).

    Notes
    -----
    :math:`R^{1/2}` is the true symmetric matrix square root (``eigh``), so
    :math:`\mathrm{Cov}(\mathrm{vec} A) = (R_N \otimes R_M)/M`. The QCS-SGM+ reference code
    takes an elementwise root (:math:`\rho^{|i-j|/2}`), which is a different matrix
    (not even a square root of :math:`R`); we follow the paper's definition.

    Examples
    --------
    >>> import invdiff as ivd
    >>> A = ivd.operators.correlated_matrix(30, 40, rho=0.5, rng=ivd.random.Generator(0))
    >>> A.shape
    (30, 40)
    """
    M, N = _dims(M, N)
    try:
        r = float(rho)
    except (TypeError, ValueError):
        raise TypeError(f"rho must be a real number with |rho| < 1; received {rho!r}") from None
    if not (math.isfinite(r) and abs(r) < 1.0):
        raise ValueError(f"rho must satisfy |rho| < 1; received {rho!r}")
    xp, device, dtype = _home(like)
    like0 = xp.zeros((), dtype=wide_dtypes(xp, device)[0], device=device)
    G = rng.normal((M, N), like=like0)
    A = _toeplitz_sqrt(xp, M, r, device) @ G @ _toeplitz_sqrt(xp, N, r, device) / math.sqrt(M)
    return xp.astype(A, dtype)

