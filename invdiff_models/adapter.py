"""Wrap a torch network as an invdiff ScoreModel.

A ScoreModel is called as ``model(x_t, t)`` with ``x_t`` of shape ``(*batch, C, H, W)`` in any
array namespace and ``t`` in the process's own time variable (DESIGN.md, TEAM.md). The adapter
converts the array to torch (DLPack zero-copy for torch / cupy / any DLPack producer on the
network's device, a host copy for NumPy), maps ``t`` to the network's native input, runs the
network under ``torch.no_grad()`` in ``eval()`` mode, and returns the prediction in the
caller's namespace, device and dtype. :meth:`TorchScoreModel.vjp` runs with autograd for DPS
and PiGDM.

Native time inputs of the supported families:

=================  ====================  =====================  ==================================
factory            process               prediction             network input for our ``t``
=================  ====================  =====================  ==================================
:func:`adm`        ``VP`` (linear,       ``"eps"`` (+ learned   ``t - 1`` (step ``k`` -> ``k - 1``)
                   T = 1000)             log-variance)
:func:`ncsnv2`     ``VE`` (its sigmas)   ``"score"``            ``t`` is sigma; the body output is
                                                                divided by ``t``
:func:`rectified`  ``Flow``              ``"velocity"``         ``999 (1 - t)``; output negated
=================  ====================  =====================  ==================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from invdiff._array_api import check_floating, is_array, namespace
from invdiff.processes import VE, VP, Flow, ForwardProcess

__all__ = ["TorchScoreModel", "adm", "ncsnv2", "rectified", "to_torch", "from_torch",
           "torch_device", "torch_dtype", "as_path"]

PREDICTIONS = ("eps", "x0", "score", "velocity")

#: RectifiedFlow samples their time ``s`` in ``[eps, 1]`` with ``eps = 1e-3`` (s = 0 is noise).
RF_EPS = 1e-3


# ---------------------------------------------------------------------------------------------
# argument checks shared by the loaders

_DTYPE_NAMES = {"float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
                "float32": torch.float32, "float": torch.float32, "float64": torch.float64,
                "double": torch.float64}


def torch_dtype(dtype: Any, name: str = "dtype") -> torch.dtype | None:
    """A floating ``torch.dtype`` from a ``torch.dtype``, its name or a NumPy dtype (or None).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff_models.adapter import torch_dtype
    >>> torch_dtype("float64"), torch_dtype(np.float32), torch_dtype(None)
    (torch.float64, torch.float32, None)
    >>> torch_dtype("int8")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dtype must be a floating dtype (...); received 'int8'
    """
    if dtype is None or isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    key = None
    if isinstance(dtype, str):
        key = dtype.strip().lower().removeprefix("torch.")
    elif isinstance(dtype, type) and issubclass(dtype, np.generic) or isinstance(dtype, np.dtype):
        key = np.dtype(dtype).name
    if key in _DTYPE_NAMES:
        return _DTYPE_NAMES[key]
    if isinstance(dtype, (str, torch.dtype, np.dtype)) or key is not None:
        raise ValueError(f"{name} must be a floating dtype (torch.float32, 'float64', "
                         f"np.float16 ...); received {dtype!r}")
    raise TypeError(f"{name} must be a torch.dtype, a dtype name such as 'float32', or None; "
                    f"received {type(dtype).__name__} {dtype!r}")


def torch_device(device: Any, name: str = "device", *, allow_none: bool = False):
    """A ``torch.device`` from a device or a string such as ``"cpu"`` or ``"cuda:0"``.

    Refuses a device this machine does not have (``"cuda"`` without CUDA) with a
    ``ValueError`` naming ``name``, instead of an error deep inside torch later.

    Examples
    --------
    >>> from invdiff_models.adapter import torch_device
    >>> torch_device("cpu")
    device(type='cpu')
    >>> torch_device("float32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: device must be a torch device ...; received 'float32' (a dtype? pass it as ...)
    """
    if device is None and allow_none:
        return None
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(f"{name} must be a torch.device or a string such as 'cpu' or 'cuda:0'; "
                        f"received {type(device).__name__} {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        hint = ""
        if isinstance(device, str) and device.strip().lower().removeprefix("torch.") in \
                _DTYPE_NAMES:
            hint = f" (a dtype? pass it as dtype={device!r})"
        raise ValueError(f"{name} must be a torch device such as 'cpu' or 'cuda:0'; received "
                         f"{device!r}{hint}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r} asks for CUDA, which this torch cannot use "
                         "(torch.cuda.is_available() is False); use 'cpu'")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps")
                                  and torch.backends.mps.is_available()):
        raise ValueError(f"{name}={device!r} asks for MPS, which is not available here")
    return dev


def as_path(name: str, value: Any) -> str:
    """``value`` as a path string (``str`` or ``os.PathLike``), or a ``TypeError`` naming it.

    Examples
    --------
    >>> from invdiff_models.adapter import as_path
    >>> as_path("folder", "/tmp")
    '/tmp'
    """
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and path:
            return path
    raise TypeError(f"{name} must be a path (str or os.PathLike); received "
                    f"{type(value).__name__} {value!r}")


# ---------------------------------------------------------------------------------------------
# array bridging

def _is_numpy(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


def _torch_dtype(dtype: torch.dtype) -> Any:
    return {torch.float16: np.float16, torch.float32: np.float32,
            torch.float64: np.float64}.get(dtype)


def to_torch(x: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as a torch tensor on ``device`` with ``dtype``, without writing into ``x``.

    torch tensors are moved/cast (no copy when already right); NumPy arrays are copied on the
    host once; other arrays (cupy, array-api-strict ...) go through DLPack, zero-copy when on the
    same device, with a host copy as fallback.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from invdiff_models.adapter import to_torch
    >>> to_torch(np.ones(2), torch.device("cpu"), torch.float32)
    tensor([1., 1.])
    """
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    if _is_numpy(x) or isinstance(x, (int, float)):
        np_dtype = _torch_dtype(dtype)
        host = np.array(x, dtype=np_dtype, copy=True) if np_dtype is not None \
            else np.array(x, copy=True)
        return torch.from_numpy(host).to(device=device, dtype=dtype)
    try:
        t = torch.from_dlpack(x)
    except (BufferError, TypeError, RuntimeError, AttributeError):
        t = torch.from_numpy(np.array(x, copy=True))
    return t.to(device=device, dtype=dtype)


def _namespace_of(like: Any):
    import array_api_compat

    return array_api_compat.array_namespace(like)


def from_torch(t: torch.Tensor, like: Any) -> Any:
    """``t`` converted to the namespace, device and dtype of ``like``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from invdiff_models.adapter import from_torch
    >>> from_torch(torch.ones(2), np.zeros(3, dtype=np.float64))
    array([1., 1.])
    """
    t = t.detach()
    if isinstance(like, torch.Tensor):
        return t.to(device=like.device, dtype=like.dtype)
    if _is_numpy(like):
        return t.to(device="cpu").numpy().astype(like.dtype, copy=False)
    import array_api_compat

    xp = array_api_compat.array_namespace(like)
    dev = array_api_compat.device(like)
    try:
        out = xp.from_dlpack(t.contiguous())
        if array_api_compat.device(out) != dev:
            raise BufferError("device differs")
    except (BufferError, TypeError, RuntimeError, AttributeError, ValueError):
        out = xp.asarray(t.to(device="cpu").numpy(), device=dev)
    return xp.astype(out, like.dtype) if out.dtype != like.dtype else out


# ---------------------------------------------------------------------------------------------

class TorchScoreModel:
    """A torch network as a ScoreModel (``model(x_t, t)``, ``process``, ``prediction``).

    Parameters
    ----------
    net : torch.nn.Module
        The network, called with its native inputs by ``forward``.
    process : ForwardProcess
        The forward process the network was trained for, in invdiff's time convention.
    prediction : {"eps", "x0", "score", "velocity"}
        What ``forward`` returns (in invdiff's convention, e.g. velocity ``= eps - x0`` for
        the flow).
    forward : callable
        ``forward(net, x, t) -> Tensor``: ``x`` (B, C, H, W) in the network's dtype and device,
        ``t`` a float64 tensor of shape (B,) on the same device holding invdiff times; maps
        ``t`` to the native input, calls ``net`` and returns the prediction. With
        ``learned_range=True`` it returns ``2 C`` channels ``[pred, v]``.
    learned_range : bool
        The network also outputs ``v`` in [-1, 1] interpolating the log variance between the
        posterior variance and beta (Nichol & Dhariwal 2021); needs a :class:`VP` process.
        Enables :meth:`predict_with_log_variance`.
    data_range : (float, float)
        The range of clean images the network was trained on (documentation for callers).
    source : str
        Where the weights came from (set by the loaders).
    channels : int, optional
        Channels ``C`` the network takes; inputs with another ``C`` are refused with a
        ``ValueError`` naming ``x_t`` (instead of a torch error from inside the network).
    size_multiple : int, default 1
        Height and width must be multiples of it (the network's total downsampling).

    Notes
    -----
    Every call runs under ``torch.no_grad()`` with ``net.eval()`` (dropout off), except
    :meth:`vjp`, which keeps ``eval()`` but records the graph. Inputs of another dtype are
    cast to the network's dtype and outputs cast back.

    Examples
    --------
    >>> import numpy as np, torch
    >>> import invdiff as ivd
    >>> from invdiff_models.adapter import TorchScoreModel
    >>> net = torch.nn.Conv2d(1, 1, 1, bias=False)
    >>> model = TorchScoreModel(net, ivd.processes.Flow.rectified(), "velocity",
    ...                         forward=lambda net, x, t: net(x))
    >>> model(np.zeros((2, 1, 4, 4)), 0.5).shape
    (2, 1, 4, 4)
    """

    vjp_accepts_callable = True

    def __init__(self, net: nn.Module, process: ForwardProcess, prediction: str, *,
                 forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
                 learned_range: bool = False, data_range: tuple[float, float] = (-1.0, 1.0),
                 source: str = "", channels: int | None = None, size_multiple: int = 1):
        if not callable(forward):
            raise TypeError(f"forward must be callable as forward(net, x, t); received "
                            f"{type(forward).__name__}")
        if not isinstance(process, ForwardProcess):
            raise TypeError(f"process must be an invdiff.processes.ForwardProcess; received "
                            f"{type(process).__name__}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}; received {prediction!r}")
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module; received {type(net).__name__}")
        if learned_range and not isinstance(process, VP):
            raise ValueError("learned_range=True needs a VP process (beta schedule); received "
                             f"{process!r}")
        self.net = net.eval()
        self.process = process
        self.prediction = prediction
        self.learned_range = learned_range
        self.data_range = tuple(data_range)
        self.source = source
        self._forward = forward
        self.channels = None if channels is None else _positive_int("channels", channels)
        self.size_multiple = _positive_int("size_multiple", size_multiple)

    def __repr__(self) -> str:
        return (f"TorchScoreModel({type(self.net).__name__}, process={self.process!r}, "
                f"prediction={self.prediction!r})")

    # -- helpers ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the network's parameters."""
        return next(self.net.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """dtype inputs are cast to: that of the network's first floating parameter.

        (ADM after ``convert_to_fp16`` still takes float32: its ``time_embed`` stays float32
        and it casts to half internally, as the original.)
        """
        for p in self.net.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    def _check_input(self, x_t: Any) -> tuple:
        """Shape ``(*batch, C, H, W)`` with the network's ``C`` and sizes, floating dtype."""
        check_floating("x_t", x_t)
        shape = tuple(x_t.shape)
        c = "C" if self.channels is None else str(self.channels)
        if len(shape) < 3:
            raise ValueError(f"x_t must have shape (*batch, {c}, H, W); received shape {shape}")
        if self.channels is not None and shape[-3] != self.channels:
            plural = "s" if self.channels != 1 else ""
            raise ValueError(f"x_t must have {self.channels} channel{plural} (shape (*batch, "
                             f"{c}, H, W)) for this network; received shape {shape}")
        m = self.size_multiple
        if m > 1 and (shape[-2] % m or shape[-1] % m):
            raise ValueError(f"x_t must have height and width that are multiples of {m} for "
                             f"this network; received shape {shape}")
        if 0 in shape[-3:]:
            raise ValueError(f"x_t must have non-empty C, H, W; received shape {shape}")
        return shape

    def _prepare(self, x_t: Any, t: Any, requires_grad: bool = False):
        shape = self._check_input(x_t)
        batch = shape[:-3]
        x = to_torch(x_t, self.device, self.dtype).reshape(-1, *shape[-3:])
        tt = self._times(t, batch, x.shape[0])
        if requires_grad:
            x = x.detach().requires_grad_(True)
        return x, tt, batch

    def _times(self, t: Any, batch: tuple, n: int) -> torch.Tensor:
        time_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        if isinstance(t, (int, float)) or (_is_numpy(t) and np.ndim(t) == 0):
            if _is_numpy(t) and not (np.issubdtype(np.asarray(t).dtype, np.integer)
                                     or np.issubdtype(np.asarray(t).dtype, np.floating)):
                raise TypeError(f"t must be a real number; received {np.asarray(t).dtype} {t!r}")
            # a scalar time is checked against the process (free: no device sync)
            t = self.process.check_time(t if isinstance(t, bool) else float(t))
            return torch.full((n,), float(t), dtype=time_dtype, device=self.device)
        if not is_array(t):
            raise TypeError(f"t must be a number or an array of times; received "
                            f"{type(t).__name__}")
        xp = namespace(t=t)
        if not xp.isdtype(t.dtype, ("integral", "real floating")):
            raise TypeError(f"t must have a real (integer or floating) dtype; received {t.dtype}")
        tt = to_torch(t, self.device, time_dtype)
        try:
            tt = torch.broadcast_to(tt, batch)
        except RuntimeError:
            raise ValueError(f"t must be a float or an array broadcastable to the batch shape "
                             f"{batch}; received shape {tuple(tt.shape)}") from None
        return tt.reshape(n)

    def _run(self, x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        if self.net.training:
            self.net.eval()
        return self._forward(self.net, x, tt)

    def _split(self, out: torch.Tensor, c: int):
        if not self.learned_range:
            return out, None
        if out.shape[1] != 2 * c:
            raise ValueError(f"learned_range network must return {2 * c} channels; "
                             f"returned {out.shape[1]}")
        return out[:, :c], out[:, c:]

    # -- ScoreModel protocol -----------------------------------------------------------------
    def __call__(self, x_t: Any, t: Any) -> Any:
        """The prediction at ``(x_t, t)``, in the namespace, device and dtype of ``x_t``."""
        x, tt, batch = self._prepare(x_t, t)
        with torch.no_grad():
            pred, _ = self._split(self._run(x, tt), x.shape[1])
        return from_torch(pred.reshape(*batch, *pred.shape[1:]), x_t)

    def vjp(self, x_t: Any, t: Any, cotangent: Any) -> tuple[Any, Any]:
        """``(prediction, J^T cotangent)`` with ``J = d prediction / d x_t`` (torch autograd).

        Used by DPS and PiGDM; the network stays in ``eval()`` mode. ``cotangent`` may be a
        callable ``cotangent(prediction) -> array``, evaluated between the forward and the
        backward pass (``vjp_accepts_callable``), so guidance whose cotangent depends on the
        prediction costs one forward pass.

        Examples
        --------
        >>> import numpy as np, torch
        >>> import invdiff as ivd
        >>> from invdiff_models.adapter import TorchScoreModel
        >>> net = torch.nn.Conv2d(1, 1, 1, bias=False).double()
        >>> with torch.no_grad():
        ...     _ = net.weight.fill_(3.0)
        >>> model = TorchScoreModel(net, ivd.processes.Flow.rectified(), "velocity",
        ...                         forward=lambda net, x, t: net(x))
        >>> pred, pulled = model.vjp(np.ones((1, 1, 2, 2)), 0.5, np.ones((1, 1, 2, 2)))
        >>> pulled[0, 0]
        array([[3., 3.],
               [3., 3.]])
        """
        if not callable(cotangent):  # refuse before the forward pass
            _check_cotangent(cotangent, x_t)
        x, tt, batch = self._prepare(x_t, t, requires_grad=True)
        with torch.enable_grad():
            pred, _ = self._split(self._run(x, tt), x.shape[1])
            out = from_torch(pred.detach().reshape(*batch, *pred.shape[1:]), x_t)
            # DPS/PiGDM's cotangent depends on the prediction itself: one forward pass serves both
            if callable(cotangent):
                cotangent = cotangent(out)
            _check_cotangent(cotangent, out)
            v = to_torch(cotangent, self.device, self.dtype).reshape(x.shape)
            (pulled,) = torch.autograd.grad(pred, x, grad_outputs=v)
        return out, from_torch(pulled.reshape(*batch, *pulled.shape[1:]), x_t)

    @property
    def predict_with_log_variance(self):
        """``(x_t, t) -> (prediction, log_variance)``; present only with a learned variance.

        Samplers test for it with ``getattr(model, "predict_with_log_variance", None)``, so a
        model without ``learned_range`` must not have the attribute at all.
        """
        if not self.learned_range:
            raise AttributeError("this model has no learned variance (learned_range=False)")
        return self._predict_with_log_variance

    def _predict_with_log_variance(self, x_t: Any, t: Any) -> tuple[Any, Any]:
        r"""Prediction and the learned per-pixel log variance of :math:`p(x_{t-1} | x_t)`.

        Notes
        -----
        ``log_var = f log(beta_t) + (1 - f) log(beta~_t)`` with ``f = (v + 1) / 2`` (Nichol &
        Dhariwal 2021, "learned_range"), ``beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)``
        clipped as in guided-diffusion: at ``t <= 2`` the value of step 2 (step 1 has
        ``beta~ = 0``). For fractional ``t``, ``beta_t = 1 - abar_t / abar_{t-1}`` from the
        process's interpolation (exact at integer steps).

        Examples
        --------
        >>> import numpy as np, torch
        >>> import invdiff as ivd
        >>> from invdiff_models.adapter import TorchScoreModel
        >>> net = torch.nn.Conv2d(1, 2, 1)
        >>> proc = ivd.processes.VP.linear(1000)
        >>> model = TorchScoreModel(net, proc, "eps", forward=lambda n, x, t: n(x),
        ...                         learned_range=True)
        >>> eps, log_var = model.predict_with_log_variance(np.zeros((1, 1, 2, 2)), 500)
        >>> eps.shape, log_var.shape
        ((1, 1, 2, 2), (1, 1, 2, 2))
        """
        x, tt, batch = self._prepare(x_t, t)
        with torch.no_grad():
            pred, v = self._split(self._run(x, tt), x.shape[1])
            if isinstance(t, (int, float)):  # the samplers' case: Python numbers, no device
                # round trip (a .cpu() of a GPU tensor would wait for the GPU every step)
                log_beta, log_post = _log_variance_bounds(self.process, float(t), math)
            else:
                log_beta, log_post = _log_variance_bounds(self.process, tt.cpu().double())
                shape = (-1,) + (1,) * (v.ndim - 1)
                log_beta = log_beta.to(v.device, v.dtype).reshape(shape)
                log_post = log_post.to(v.device, v.dtype).reshape(shape)
            frac = (v + 1) / 2
            log_var = frac * log_beta + (1 - frac) * log_post
        return (from_torch(pred.reshape(*batch, *pred.shape[1:]), x_t),
                from_torch(log_var.reshape(*batch, *log_var.shape[1:]), x_t))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}")
    return int(value)


def _check_cotangent(cotangent: Any, out: Any) -> None:
    """The cotangent of a vjp: a floating array of the prediction's shape."""
    check_floating("cotangent", cotangent)
    if tuple(cotangent.shape) != tuple(out.shape):
        raise ValueError(f"cotangent must have the shape of the prediction (that of x_t), "
                         f"{tuple(out.shape)}; received shape {tuple(cotangent.shape)}")


def _log_variance_bounds(process: VP, t, lib=torch):
    """``log beta_t`` and the clipped ``log beta~_t`` at (possibly fractional) steps ``t``:
    a tensor with ``lib=torch``, a Python float with ``lib=math``."""
    def log_ab(s):
        return 2 * lib.log(process.a(s))

    if lib is math:
        t = min(max(t, 1.0), process.t_max)
        t2 = max(t, 2.0)
    else:
        t = t.clamp(1.0, process.t_max)
        t2 = t.clamp(min=2.0)  # guided-diffusion: step 1 uses the posterior variance of step 2
    log_alpha = log_ab(t) - log_ab(t - 1)
    log_beta = lib.log(-lib.expm1(log_alpha))
    la2 = log_ab(t2) - log_ab(t2 - 1)
    log_post = (lib.log(-lib.expm1(la2)) + lib.log(-lib.expm1(log_ab(t2 - 1)))
                - lib.log(-lib.expm1(log_ab(t2))))
    return log_beta, log_post


# ---------------------------------------------------------------------------------------------
# factories for the three original families

def adm(net: nn.Module, process: VP | None = None, *, class_labels: Any = None,
        source: str = "") -> TorchScoreModel:
    """ScoreModel for an ADM / guided-diffusion UNet (eps prediction, VP process).

    Parameters
    ----------
    net : ADMUNet
        Called as ``net(x, t - 1)``: invdiff's step ``t = k`` (1..T) is the original's
        0-indexed ``k - 1``; fractional ``t`` passes through as a float.
    process : VP, optional
        Default ``VP.linear(1000)`` (beta 1e-4 .. 0.02), the schedule of DPS, DMPS and the
        OpenAI LSUN/ImageNet models.
    class_labels : int or sequence of int, optional
        For class-conditional networks (``class_cond=True``): one label for every sample, or
        one per sample of the (flattened) batch.
    source : str
        Recorded as ``model.source``.

    Returns
    -------
    TorchScoreModel
        ``prediction="eps"``, images in ``[-1, 1]``; if the network outputs ``2 C`` channels
        (``learn_sigma``) the learned variance is available through
        ``predict_with_log_variance``.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff_models import adm as adm_arch, adapter
    >>> net = adm_arch.build({"image_size": 8, "num_channels": 32, "num_res_blocks": 1,
    ...                       "channel_mult": "1", "attention_resolutions": "",
    ...                       "learn_sigma": True})
    >>> model = adapter.adm(net)
    >>> model(np.zeros((1, 3, 8, 8), dtype=np.float32), 10).shape
    (1, 3, 8, 8)
    """
    process = VP.linear(1000) if process is None else process
    if not isinstance(process, VP):
        raise TypeError(f"process must be a VP process; received {process!r}")
    conditional = getattr(net, "num_classes", None) is not None
    if conditional != (class_labels is not None):
        raise ValueError("class_labels must be given exactly when the network is "
                         f"class-conditional (num_classes={getattr(net, 'num_classes', None)})")
    learned = getattr(net, "out_channels", None) == 2 * getattr(net, "in_channels", -1)
    labels = None if class_labels is None else torch.as_tensor(class_labels, dtype=torch.long)

    def forward(net: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        native = (t - 1.0).to(torch.float32 if x.dtype != torch.float64 else x.dtype)
        if labels is None:
            return net(x, native)
        return net(x, native, torch.broadcast_to(labels.to(x.device), (x.shape[0],)))

    return TorchScoreModel(net, process, "eps", forward=forward, learned_range=learned,
                           data_range=(-1.0, 1.0), source=source,
                           channels=getattr(net, "in_channels", None))


def ncsnv2(net: nn.Module, process: VE | None = None, *, source: str = "") -> TorchScoreModel:
    """ScoreModel for NCSNv2 (score prediction, VE process, data in ``[0, 1]``).

    Parameters
    ----------
    net : NCSNv2
        Evaluated as ``net.score(x, sigma)`` = ``body(x) / sigma`` with ``sigma = t``; at a
        level ``sigma_i`` of its list this is exactly the original ``net(x, i)``.
    process : VE, optional
        Default: ``VE`` with the network's own noise levels (``net.sigmas``, descending).

    Returns
    -------
    TorchScoreModel

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff_models import ncsnv2 as arch, adapter
    >>> net = arch.build({"model": {"ngf": 8, "sigma_begin": 50, "sigma_end": 0.01,
    ...                             "num_classes": 10}, "data": {"channels": 1}})
    >>> model = adapter.ncsnv2(net)
    >>> model.process.sigmas[0], model(np.zeros((1, 1, 28, 28)), 50.0).shape
    (50.0, (1, 1, 28, 28))
    """
    if process is None:
        s = [float(v) for v in net.sigmas.detach().cpu().double()]
        process = VE(max(s), min(s), sigmas=sorted(s, reverse=True))
    if not isinstance(process, VE):
        raise TypeError(f"process must be a VE process; received {process!r}")
    return TorchScoreModel(net, process, "score", forward=_ncsnv2_forward,
                           data_range=(0.0, 1.0), source=source,
                           channels=getattr(net, "channels", None))


def _ncsnv2_forward(net: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return net.score(x, t.to(x.dtype))


def rectified(net: nn.Module, *, centered: bool = True, source: str = "") -> TorchScoreModel:
    """ScoreModel for a RectifiedFlow network (velocity, :class:`Flow` process).

    Parameters
    ----------
    net : NCSNpp
        Trained on RectifiedFlow's convention: time ``s`` in ``[1e-3, 1]`` with ``s = 1`` at
        data, ``x_s = s x1 + (1 - s) z``, called as ``net(x, 999 s)``, output
        ``d x_s / d s = x1 - z``.
    centered : bool
        Data in ``[-1, 1]`` (True, all released configs) or ``[0, 1]``.

    Returns
    -------
    TorchScoreModel
        With invdiff's flow time ``t = 1 - s`` (``t = 0`` is data) and velocity
        ``d x_t / d t = eps - x0``, i.e. the network output negated. ``s`` is clamped to
        ``>= 1e-3`` (their sampler's ``eps``; the network divides by ``999 s``).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff_models import ncsnpp as arch, adapter
    >>> net = arch.build({"model": {"nf": 16, "ch_mult": [1], "num_res_blocks": 1,
    ...                             "attn_resolutions": []},
    ...                   "data": {"image_size": 8, "num_channels": 3, "centered": True}})
    >>> model = adapter.rectified(net)
    >>> model(np.zeros((1, 3, 8, 8)), 0.3).shape
    (1, 3, 8, 8)
    """
    return TorchScoreModel(net, Flow.rectified(), "velocity", forward=_rectified_forward,
                           data_range=(-1.0, 1.0) if centered else (0.0, 1.0), source=source,
                           channels=getattr(net, "num_channels", None),
                           size_multiple=2 ** (getattr(net, "num_resolutions", 1) - 1))


def _rectified_forward(net: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    s = torch.clamp(1.0 - t, min=RF_EPS)
    native = (999.0 * s).to(torch.float32 if x.dtype != torch.float64 else x.dtype)
    return -net(x, native)
