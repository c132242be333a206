"""Check that an operator keeps the :class:`SVDOperator` contract (for your own operators)."""

from __future__ import annotations

from .._array_api import check_floating, is_array, namespace

__all__ = ["check_svd"]


def check_svd(op, *, like=None, rng=None, batch: int = 2, rtol: float | None = None) -> dict:
    r"""Test an operator's SVD on random inputs: the checks a new operator must pass.

    Parameters
    ----------
    op : SVDOperator
        The operator to check (typically a subclass of your own).
    like : array, optional
        Run the check in this array's namespace, device and floating dtype; default NumPy
        float64.
    rng : invdiff.random.Generator or int, optional
        Source of the random inputs; default seed 0.
    batch : int, default 2
        Number of random inputs (a leading batch axis, which must pass through).
    rtol : float, optional
        Tolerance on the relative errors; default ``1e-8`` in float64, ``1e-4`` in float32.

    Returns
    -------
    dict
        The relative error of each property (all ``<= rtol``):

        ``"apply = U s Vt"``
            :math:`\|Ax - U(s \odot V^\top x)\| / \|Ax\|`;
        ``"adjoint"``
            :math:`|\langle Ax, y\rangle - \langle x, A^\top y\rangle|` relative to
            :math:`\|Ax\|\|y\|`;
        ``"V orthonormal"``, ``"U orthonormal"``
            :math:`\|V^\top V z - z\| / \|z\|` and the same for :math:`U`;
        ``"pinv"``
            :math:`\|A A^+ (Ax) - Ax\| / \|Ax\|`.

    Raises
    ------
    ValueError
        A property fails (every failure is listed with its error), a shape is wrong, or a
        singular value is not positive and finite.

    Examples
    --------
    >>> import invdiff as ivd
    >>> errors = ivd.operators.check_svd(ivd.operators.SuperResolution(2, in_shape=(1, 6, 6)))
    >>> sorted(errors), max(errors.values()) < 1e-12
    (['U orthonormal', 'V orthonormal', 'adjoint', 'apply = U s Vt', 'pinv'], True)
    """
    from ..random import Generator

    for m in ("apply", "adjoint", "Vt", "V", "Ut", "U", "pinv", "singulars_like"):
        if not callable(getattr(op, m, None)):
            raise TypeError(f"op must be an SVDOperator; {type(op).__name__} lacks {m}")
    if like is None:
        import array_api_compat.numpy as np_xp

        like = np_xp.zeros(1, dtype=np_xp.float64)
    if not is_array(like):
        raise TypeError(f"like must be an array; received {type(like).__name__}")
    check_floating("like", like)
    xp = namespace(like=like)
    rng = rng if isinstance(rng, Generator) else Generator(0 if rng is None else rng)
    if rtol is None:
        rtol = 1e-8 if like.dtype == xp.float64 else 1e-4
    in_shape, out_shape = tuple(op.in_shape), tuple(op.out_shape)

    x = rng.normal((batch, *in_shape), like=like)
    y = rng.normal((batch, *out_shape), like=like)
    s = op.singulars_like(like)
    if s.ndim != 1 or not bool(xp.all(xp.isfinite(s) & (s > 0))):
        raise ValueError("op: singular values must be a 1-D array of positive finite numbers; "
                         f"received shape {tuple(s.shape)}")
    r = s.shape[0]
    z = rng.normal((batch, r), like=like)

    def norm(a):
        return float(xp.sqrt(xp.sum(a * a)))

    Ax = op.apply(x)
    shapes = {"apply(x)": (tuple(Ax.shape), (batch, *out_shape)),
              "adjoint(y)": (tuple(op.adjoint(y).shape), (batch, *in_shape)),
              "Vt(x)": (tuple(op.Vt(x).shape), (batch, r)),
              "V(z)": (tuple(op.V(z).shape), (batch, *in_shape)),
              "Ut(y)": (tuple(op.Ut(y).shape), (batch, r)),
              "U(z)": (tuple(op.U(z).shape), (batch, *out_shape))}
    wrong = [f"{k} has shape {got}, expected {want}" for k, (got, want) in shapes.items()
             if got != want]
    if wrong:
        raise ValueError("op: " + "; ".join(wrong))
    scale = max(norm(Ax), float(xp.finfo(like.dtype).smallest_normal) ** 0.5)
    errors = {
        "apply = U s Vt": norm(Ax - op.U(s * op.Vt(x))) / scale,
        "adjoint": abs(float(xp.sum(Ax * y)) - float(xp.sum(x * op.adjoint(y))))
        / (scale * norm(y)),
        "V orthonormal": norm(op.Vt(op.V(z)) - z) / norm(z),
        "U orthonormal": norm(op.Ut(op.U(z)) - z) / norm(z),
        "pinv": norm(op.apply(op.pinv(Ax)) - Ax) / scale,
    }
    failed = {k: v for k, v in errors.items() if not v <= rtol}
    if failed:
        raise ValueError("op breaks the SVDOperator contract: " + "; ".join(
            f"{k}: relative error {v:.2e} > {rtol:.0e}" for k, v in failed.items()))
    return errors
