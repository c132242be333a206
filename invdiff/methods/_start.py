"""Start states built from the measurement: ΠGDM's and OT-ODE's noised initial guesses."""

from __future__ import annotations

from .._array_api import check_at_least


def _svd_op(op, method: str):
    for m in ("V", "Ut", "singulars_like"):
        if not callable(getattr(op, m, None)):
            raise TypeError(f"op must be an SVDOperator ({method} starts from an SVD-based "
                            f"estimate); {type(op).__name__} lacks {m}")
    return op


def tikhonov(op, y, sigma_y, *, method: str = "ot_ode"):
    r""":math:`V\,\mathrm{diag}\big(s/(s^2 + \sigma_y^2)\big)\,U^\top y`, the Tikhonov estimate.

    The posterior mean of :math:`x` under a :math:`\mathcal N(0, I)` prior (the data range
    ``[-1, 1]`` has roughly unit scale) and :math:`y = Ax + \sigma_y n`; it equals
    :math:`A^{+} y` as :math:`\sigma_y \to 0` but damps the directions with
    :math:`s \lesssim \sigma_y`, where :math:`A^{+}` amplifies the noise by :math:`1/s`.
    """
    op = _svd_op(op, method)
    var = check_at_least("sigma_y", sigma_y) ** 2
    s = op.singulars_like(y)
    return op.V(s * op.Ut(y) / (s * s + var))


def pinv(op, y, *, method: str = "pigdm"):
    """:math:`A^{+} y` through the SVD (checked to be an SVD operator)."""
    return _svd_op(op, method).pinv(y)


def noised(process, t, x_hat, rng, n):
    r""":math:`a_t \hat x + b_t \varepsilon` with ``n`` samples per measurement (a leading axis)."""
    shape = ((int(n),) if n is not None else ()) + tuple(x_hat.shape)
    return process.a(t) * x_hat + process.b(t) * rng.normal(shape, like=x_hat)
