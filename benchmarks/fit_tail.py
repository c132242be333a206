"""Rational fits of the lower-tail moments of N(0, 1) used by ``invdiff.special._below``.

For ``X ~ N(0, 1)`` conditioned on ``X <= -z`` (``z >= start``: 6 in float64, 3 in float32)
the direct formulas ``delta = lambda - z`` and ``var = 1 - lambda * delta`` cancel
(``lambda = phi(z)/Phi(-z)``). With ``u = 1/z^2`` the scaled moments

    v(u) = z^2 Var(X | X <= x),     w(u) = z (x - E[X | X <= x]) = z (lambda - z)   (x = -z),

are smooth on ``[0, 1/start^2]`` with ``v(0) = w(0) = 1``. They are Stieltjes-like functions
of ``u`` (the Mills ratio has the Laplace continued fraction ``z R(z) = 1/(1 + u/(1 + 2u/(1 +
...))`` in ``u``), so low-degree rational functions ``P(u)/Q(u)`` (``Q(0) = 1``, poles on the
negative axis) reach full precision where a polynomial needs degree 14. Both are fitted with
one denominator degree so that ``_below`` evaluates the powers of ``u`` once.

The fit: 300 Chebyshev points in ``u``, reference values from mpmath at 60 digits (the Mills
ratio from ``erfc``), a linearised relative least-squares fit iterated on the denominator
(Sanathanan-Koerner), then Lawson reweighting towards the minimax error. The check: a dense
grid (z from ``start`` to 40 in 4000 steps and u from 0 to ``1/start^2`` in 2000), the
coefficients rounded to float64 and evaluated the way ``_below`` does (powers by repeated
products, one matrix product, one division), against mpmath.

Run ``python -m benchmarks.fit_tail`` (about 15 s): it prints the table
``invdiff.special._TAIL_FIT`` and the maximal relative errors.
"""

from __future__ import annotations

import argparse

import mpmath as mp
import numpy as np

# (start, numerator and denominator degree, dtype the evaluation is checked in)
FITS = {"float64": (6.0, 5, "float64"), "float32": (3.0, 3, "float32")}


def scaled_moments(u):
    """``(v, w) = (z^2 var, z delta)`` at ``u = 1/z^2``, to the current mpmath precision
    (the direct formula loses ``log10(z^4)`` digits, which are added first)."""
    if u == 0:
        return mp.mpf(1), mp.mpf(1)
    with mp.workdps(mp.mp.dps + 10 + int(2 * mp.log10(1 / u))):
        z = 1 / mp.sqrt(u)
        lam = 2 * mp.npdf(z) / mp.erfc(z / mp.sqrt(2))  # phi(z) / Phi(-z)
        delta = lam - z
        v, w = z * z * (1 - lam * delta), z * delta
    return +v, +w


def _fit(s, f, deg, iters=12, lawson=20):
    """Relative minimax-ish fit ``f ~ P(s)/Q(s)``, ``Q(0) = 1``, both of degree ``deg``."""
    q_val = [mp.mpf(1)] * len(s)
    weights = [mp.mpf(1)] * len(s)
    best = None
    for it in range(iters + lawson):
        rows, rhs = [], []
        for si, fi, qi, wi in zip(s, f, q_val, weights, strict=True):
            scale = mp.sqrt(wi) / (abs(qi) * fi)
            rows.append([scale * si**j for j in range(deg + 1)]
                        + [-scale * fi * si**j for j in range(1, deg + 1)])
            rhs.append(scale * fi)
        c = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0]
        p = [c[j] for j in range(deg + 1)]
        q = [mp.mpf(1)] + [c[deg + 1 + j] for j in range(deg)]
        q_val = [mp.polyval(q[::-1], si) for si in s]
        r = [mp.polyval(p[::-1], si) / qi / fi - 1 for si, qi, fi in zip(s, q_val, f, strict=True)]
        err = max(abs(x) for x in r)
        if best is None or err < best[0]:
            best = (err, p, q)
        if it >= iters:  # Lawson: weight up where the error is large
            weights = [wi * abs(ri) for wi, ri in zip(weights, r, strict=True)]
            total = sum(weights)
            weights = [wi / total for wi in weights]
    return best


def fit(start: float, deg: int, points: int = 300):
    """Coefficients in ``u`` of ``v`` and ``w``: ``([p_v, q_v], [p_w, q_w])``, each a list of
    ``deg + 1`` floats (``q[0] = 1``), and the fit's own maximal relative errors."""
    a = 1 / mp.mpf(start) ** 2
    s = [(1 - mp.cos(mp.pi * (i + mp.mpf(1) / 2) / points)) / 2 for i in range(points)]
    s += [mp.mpf(0), mp.mpf(1)]
    values = [scaled_moments(si * a) for si in s]
    out, errors = [], []
    for k in (0, 1):
        err, p, q = _fit(s, [v[k] for v in values], deg)
        # back from s = u / a to u
        out.append([[float(c / a**j) for j, c in enumerate(p)],
                    [float(c / a**j) for j, c in enumerate(q)]])
        errors.append(float(err))
        roots = mp.polyroots(q[::-1], maxsteps=200, extraprec=100)
        assert all(abs(mp.im(r)) < 1e-20 and mp.re(r) < 0 for r in roots), roots  # no poles
    return out, errors


def evaluate(coef, z, dtype):
    """``(var, delta)`` at ``z`` the way ``invdiff.special._below`` computes them: one matrix
    product of the powers ``u .. u^(deg+1)`` gives ``u P_v``, ``u P_w``, ``Q_v - 1``,
    ``Q_w - 1``; then ``var = u P_v / Q_v`` and ``delta = (u P_w) z / Q_w``."""
    z = np.asarray(z, dtype=dtype)
    u = (z * z) ** -1.0
    (pv, qv), (pw, qw) = coef
    rows = [list(pv), list(pw), qv[1:] + [0.0], qw[1:] + [0.0]]
    table = np.array([row + [0.0] * (len(row) % 2) for row in rows], dtype=dtype)
    powers = [u]  # u .. u^h, then times u^h: u^(h+1) .. u^2h
    for _ in range(table.shape[1] // 2 - 1):
        powers.append(powers[-1] * u)
    low = np.stack(powers)
    r = table @ np.concatenate([low, low * powers[-1]])
    return r[0] / (r[2] + 1.0), r[1] * z / (r[3] + 1.0)


def check(coef, start: float, dtype: str):
    """Maximal relative errors of ``(var, delta)`` on the dense grid, against mpmath."""
    z = np.concatenate([np.linspace(start, 40.0, 4000),
                        1 / np.sqrt(np.linspace(1 / start**2, 1e-8, 2000)), [1e8]])
    z = z.astype(dtype).astype(np.float64)  # the arguments the dtype can hold
    var, delta = evaluate(coef, z, dtype)
    ref = []
    with mp.workdps(60):
        for zi in z:
            v, w = scaled_moments(1 / mp.mpf(zi) ** 2)
            ref.append((float(v / mp.mpf(zi) ** 2), float(w / mp.mpf(zi))))
    ref = np.array(ref)
    return (float(np.max(np.abs(var / ref[:, 0] - 1))),
            float(np.max(np.abs(delta / ref[:, 1] - 1))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    mp.mp.dps = 60
    table = {}
    for name, (start, deg, dtype) in FITS.items():
        coef, fit_err = fit(start, deg)
        err = check(coef, start, dtype)
        table[name] = coef
        print(f"# {name}: z >= {start}, degree ({deg}, {deg}); fit error v {fit_err[0]:.2g}, "
              f"w {fit_err[1]:.2g}; in {dtype} on the dense grid: var {err[0]:.2g}, "
              f"delta {err[1]:.2g}")
    print("_TAIL_FIT = {")
    for name, ((pv, qv), (pw, qw)) in table.items():
        print(f'    "{name}": (')
        for label, (p, q) in (("v", (pv, qv)), ("w", (pw, qw))):
            print(f"        # {label} = P/Q: P, Q coefficients of u^0 .. u^{len(p) - 1}")
            print(f"        ({_wrapped(p, 9)},\n         {_wrapped(q, 9)}),")
        print("    ),")
    print("}")


def _wrapped(values, indent, per_line=4):
    """``[a, b, ...]`` of reprs, ``per_line`` to a line (lines under 100 characters)."""
    items = [repr(v) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"

if __name__ == "__main__":
    main()
