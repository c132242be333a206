"""One seeded random-number API over NumPy, PyTorch, CuPy and array-api-strict.

The Array API standard has no random numbers, so this is the one module of the core
that talks to each backend's own generator. Seeds go through
:class:`numpy.random.SeedSequence`, so ``spawn`` gives statistically independent
child streams, and seed 0 is an ordinary seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._array_api import (
    device_of,
    is_cupy_namespace,
    is_torch_namespace,
    namespace,
)

__all__ = ["Generator"]

# kind -> (torch function, numpy/cupy Generator method)
_DRAWS = {"normal": ("randn", "standard_normal"), "uniform": ("rand", "random")}


class Generator:
    """Seeded random numbers that come out in the namespace, device and dtype of ``like``.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence, optional
        Any non-negative integer, 0 included. ``None`` draws fresh OS entropy.

    Notes
    -----
    Each backend and device gets its own stream, created on first use from the seed:
    the same seed gives the same numbers on the same backend and device (different
    backends use different algorithms, so their numbers differ). NumPy and
    array-api-strict arrays come from :class:`numpy.random.Generator` (PCG64), torch
    tensors from a :class:`torch.Generator` on the tensor's device, CuPy arrays from
    :func:`cupy.random.default_rng` (XORWOW). Normal and uniform numbers are drawn in
    float64 and rounded to the requested dtype, so the stream does not depend on the dtype:
    float32 samples are the float64 samples of the same seed, rounded (torch and CuPy would
    otherwise use different algorithms for float32 and float64, e.g. torch's for ``n >= 16``).
    The exception is a device without float64 (Apple MPS), which draws float32.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> rng = ivd.random.Generator(0)
    >>> x = rng.normal((2, 3), like=np.zeros(1, dtype=np.float32))
    >>> x.shape, x.dtype
    ((2, 3), dtype('float32'))
    >>> bool(np.all(x == ivd.random.Generator(0).normal((2, 3), like=x)))
    True
    """

    def __init__(self, seed: int | np.random.SeedSequence | None = None):
        if isinstance(seed, np.random.SeedSequence):
            self._seq = seed
        else:
            if seed is not None and (isinstance(seed, bool) or int(seed) != seed or seed < 0):
                raise ValueError(f"seed must be a non-negative integer or None; received {seed!r}")
            self._seq = np.random.SeedSequence(None if seed is None else int(seed))
        self._streams: dict[tuple[str, str], Any] = {}

    def spawn(self, n: int) -> list[Generator]:
        """``n`` independent child generators (deterministic given the parent's seed).

        Examples
        --------
        >>> import invdiff as ivd
        >>> a, b = ivd.random.Generator(0).spawn(2)
        """
        return [Generator(s) for s in self._seq.spawn(int(n))]

    # -- streams -----------------------------------------------------------------------
    def _stream(self, xp, device):
        key = (xp.__name__, str(device))
        if key not in self._streams:
            self._streams[key] = self._new_stream(xp, device)
        return self._streams[key]

    def _new_stream(self, xp, device):
        if is_torch_namespace(xp):
            import torch

            g = torch.Generator(device=device)
            g.manual_seed(int(self._seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
            return g
        if is_cupy_namespace(xp):
            import cupy

            return cupy.random.default_rng(self._seq)
        return np.random.default_rng(self._seq)

    @staticmethod
    def _target(like):
        xp = namespace(like=like)
        return xp, device_of(like), like.dtype

    @staticmethod
    def _shape(shape) -> tuple[int, ...]:
        return (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)

    @staticmethod
    def _from_numpy(xp, device, values, dtype):
        # NumPy, array-api-strict and any other host namespace receive host numbers.
        return xp.asarray(values, dtype=dtype, device=device)

    @staticmethod
    def _floating(xp, like, dtype):
        """The dtype to sample: ``dtype``, else ``like``'s; real floating or ``TypeError``."""
        name, what = ("like", like.dtype) if dtype is None else ("dtype", dtype)
        if not xp.isdtype(what, "real floating"):
            raise TypeError(f"{name} must have a real floating dtype (float32 or float64) for "
                            f"normal/uniform samples; received {what} (pass dtype=... or a "
                            f"floating like)")
        return what

    @staticmethod
    def _index_dtype(xp, device):
        """int64, or the device's default integer where it has none (array-api-strict)."""
        return xp.__array_namespace_info__().default_dtypes(device=device)["integral"]

    # -- distributions ------------------------------------------------------------------
    def _standard(self, kind: str, shape, like, dtype):
        """N(0, 1) (``kind="normal"``) or U[0, 1) (``"uniform"``) samples for ``like``.

        Drawn in float64 and rounded to the target dtype, so a seed gives the same numbers
        (up to that rounding) in float32 and float64; devices without float64 (Apple MPS)
        draw float32.
        """
        xp, device, _ = self._target(like)
        dtype = self._floating(xp, like, dtype)
        shape = self._shape(shape)
        g = self._stream(xp, device)
        torch_draw, np_draw = _DRAWS[kind]
        if is_torch_namespace(xp):
            import torch

            wide = torch.float32 if torch.device(device).type == "mps" else torch.float64
            z = getattr(torch, torch_draw)(shape, generator=g, device=device, dtype=wide)
        elif is_cupy_namespace(xp):
            z = getattr(g, np_draw)(shape, dtype="float64")
        else:
            return self._unit(kind, xp, self._from_numpy(xp, device, getattr(g, np_draw)(shape),
                                                          dtype))
        return self._unit(kind, xp, z if z.dtype == dtype else xp.astype(z, dtype))

    @staticmethod
    def _unit(kind, xp, u):
        """Keep U[0, 1) below 1 after rounding to a narrower dtype (0.99999999 -> 1.0f)."""
        if kind != "uniform" or u.dtype == xp.float64:
            return u
        below_one = 1.0 - float(xp.finfo(u.dtype).eps) / 2
        return xp.where(u < 1.0, u, below_one)

    def normal(self, shape, *, like, dtype=None, loc: float = 0.0, scale: float = 1.0):
        """Normal samples ``loc + scale * N(0, 1)`` of ``shape`` in ``like``'s namespace.

        Parameters
        ----------
        shape : int or tuple of int
        like : array
            Fixes namespace and device, and the dtype unless ``dtype`` is given; a
            non-floating ``like`` needs ``dtype`` (``TypeError`` otherwise).
        dtype : floating dtype of ``like``'s namespace, optional
        loc, scale : float

        Notes
        -----
        The numbers are drawn in float64 and rounded to the dtype: the same seed gives the
        same samples in float32 and float64 (float32 = float64 rounded) on every backend.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.random.Generator(1).normal(4, like=np.zeros(1)).shape
        (4,)
        >>> a = ivd.random.Generator(1).normal(4, like=np.zeros(1, dtype=np.float32))
        >>> bool(np.all(a == ivd.random.Generator(1).normal(4, like=np.zeros(1)).astype(a.dtype)))
        True
        """
        z = self._standard("normal", shape, like, dtype)
        return z if (loc == 0.0 and scale == 1.0) else loc + scale * z

    def uniform(self, shape, *, like, low: float = 0.0, high: float = 1.0, dtype=None):
        """Uniform samples on ``[low, high)`` of ``shape`` in ``like``'s namespace.

        Drawn like :meth:`normal` (float64, then rounded; a non-floating ``like`` needs
        ``dtype``).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> u = ivd.random.Generator(2).uniform((3,), like=np.zeros(1), low=-1, high=1)
        >>> bool(np.all((u >= -1) & (u < 1)))
        True
        """
        u = self._standard("uniform", shape, like, dtype)
        return low + (high - low) * u

    def integers(self, low: int, high: int, shape, *, like):
        """Integers uniform on ``[low, high)`` (int64) on ``like``'s backend and device.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> k = ivd.random.Generator(3).integers(0, 10, (5,), like=np.zeros(1))
        >>> k.dtype, bool(np.all((k >= 0) & (k < 10)))
        (dtype('int64'), True)
        """
        if int(high) <= int(low):
            raise ValueError(f"high must exceed low; received low={low}, high={high}")
        xp, device, _ = self._target(like)
        shape = self._shape(shape)
        g = self._stream(xp, device)
        if is_torch_namespace(xp):
            import torch

            return torch.randint(int(low), int(high), shape, generator=g, device=device)
        if is_cupy_namespace(xp):
            return g.integers(int(low), int(high), shape, dtype="int64")
        values = g.integers(int(low), int(high), shape, dtype=np.int64)
        return self._from_numpy(xp, device, values, self._index_dtype(xp, device))

    def permutation(self, n: int, *, like):
        """A random permutation of ``0..n-1`` (int64) on ``like``'s backend and device.

        CuPy's ``Generator`` has no ``permutation``: there it is the order of ``n`` random
        63-bit integers (``argsort``; ties, of probability about :math:`n^2/2^{64}`, still give
        a permutation).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> p = ivd.random.Generator(4).permutation(5, like=np.zeros(1))
        >>> sorted(p.tolist())
        [0, 1, 2, 3, 4]
        """
        xp, device, _ = self._target(like)
        g = self._stream(xp, device)
        if is_torch_namespace(xp):
            import torch

            return torch.randperm(int(n), generator=g, device=device)
        if is_cupy_namespace(xp):
            import cupy

            return cupy.argsort(g.integers(0, 2**63 - 1, (int(n),), dtype="int64"))
        return self._from_numpy(xp, device, g.permutation(int(n)), self._index_dtype(xp, device))
