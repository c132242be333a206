"""Time and memory of a restoration, estimated before sampling.

Memory: the network's peak is *simulated* at the real size, without allocating it: the
network is run once on PyTorch's ``meta`` device (shapes, no data) under a dispatch mode that
adds up every tensor an operation creates and subtracts it when it is freed, so the high-water
mark is what the real run allocates for activations (and, for the methods that back-propagate
through the network, the saved activations and gradients). Attention computed by
``scaled_dot_product_attention`` is counted as the fused kernel the real device would use
(memory linear in the number of pixels) when that kernel is available there, and as the
explicit attention matrix otherwise. The method's own arrays (a dozen images per sample in the
batch) and the stored samples are added on top.

Time: one network evaluation (a forward pass, or a forward and backward pass for the
gradient-based methods) is timed at the real size and batch, and multiplied by the number of
evaluations the run makes.

Both are estimates: the printed numbers say "about".
"""

from __future__ import annotations

import math
import os
import time
import weakref
from dataclasses import dataclass

__all__ = ["Plan", "available_memory", "network_peak", "evaluation_seconds", "fmt_bytes",
           "fmt_seconds", "VJP_METHODS"]

#: The methods that back-propagate through the network at every step (``model.vjp``).
VJP_METHODS = frozenset({"dps", "dps_flow", "pigdm", "ot_ode"})
#: Images of the sample's size a method keeps per sample in the batch (x_t, the x0 estimate,
#: the noise, guidance terms and the operator's intermediates; generous).
STATE_IMAGES = 12
#: Fraction of the available memory a plan may use.
HEADROOM = 0.85
#: Measured peak / simulated peak of the network: the allocator's rounding and caching and the
#: convolutions' workspaces, which the simulation does not see. Measured on CPU (peak RSS
#: growth of one evaluation, bundled priors, 28x28 to 512x512, forward and forward+backward):
#: ratios 1.07 to 1.38; 1.3 keeps the estimates within about 15 % of the measurements.
ALLOCATOR_FACTOR = 1.3


@dataclass
class Plan:
    """What a ``restore`` run will cost.

    Attributes
    ----------
    batch : int
        Samples per network batch.
    batches : int
        Number of batches (``ceil(samples / batch)``).
    evaluations : int
        Network evaluations per batch (one per step).
    peak_bytes : int or None
        Estimated peak memory on the model's device (``None``: not estimable).
    available_bytes : int or None
        Memory available there now (``None``: unknown).
    seconds_per_evaluation : float or None
        Measured wall time of one evaluation at the real size and batch.

    Examples
    --------
    >>> from invdiff.cli._budget import Plan
    >>> Plan(4, 2, 100, 2**30, 8 * 2**30, 0.05).seconds
    10.0
    """

    batch: int
    batches: int
    evaluations: int
    peak_bytes: int | None
    available_bytes: int | None
    seconds_per_evaluation: float | None = None

    @property
    def seconds(self) -> float | None:
        """Estimated total wall time of the sampling."""
        if self.seconds_per_evaluation is None:
            return None
        return self.seconds_per_evaluation * self.evaluations * self.batches

    def fits(self) -> bool:
        """Whether the estimated peak fits in :data:`HEADROOM` of the available memory."""
        if self.peak_bytes is None or self.available_bytes is None:
            return True
        return self.peak_bytes <= HEADROOM * self.available_bytes


def fmt_bytes(n: float | None) -> str:
    """``1.5 GiB``-style sizes.

    Examples
    --------
    >>> from invdiff.cli._budget import fmt_bytes
    >>> fmt_bytes(3 * 2**29), fmt_bytes(2048), fmt_bytes(None)
    ('1.5 GiB', '2.0 KiB', '?')
    """
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return "?"  # pragma: no cover


def fmt_seconds(s: float | None) -> str:
    """``42 s``, ``3.5 min`` or ``2.1 h``.

    Examples
    --------
    >>> from invdiff.cli._budget import fmt_seconds
    >>> fmt_seconds(42.0), fmt_seconds(210.0), fmt_seconds(7560.0)
    ('42 s', '3.5 min', '2.1 h')
    """
    if s is None:
        return "?"
    if s < 100:
        return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"
    if s < 6000:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# ------------------------------------------------------------------------------ memory
def available_memory(device) -> int | None:
    """Bytes this process can still allocate on ``device`` (``None`` when unknown).

    CPU: ``MemAvailable`` of ``/proc/meminfo``, lowered to the cgroup's limit minus its
    usage where a container sets one; CUDA: the driver's free memory.

    Examples
    --------
    >>> from invdiff.cli._budget import available_memory
    >>> n = available_memory("cpu")
    >>> n is None or n > 0
    True
    """
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    if dev.type != "cpu":
        return None
    avail = _meminfo_available()
    limit = _cgroup_free()
    if avail is None:
        return limit
    return avail if limit is None else min(avail, limit)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> int | None:
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                text = f.read().strip()
            if text == "max":
                return None
            limit = int(text)
            with open(usage_file) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit >= 2**60:  # cgroup v1 "no limit"
            return None
        return max(limit - usage, 0)
    return None


def as_module(model):
    """``forward(net, x, t)`` of a TorchScoreModel as an ``nn.Module`` (for functional_call)."""
    from torch import nn

    class Apply(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model.net

        def forward(self, x, t):
            return model._forward(self.net, x, t)

    return Apply()


def _fused_attention_available(q, k, v, attn_mask, dropout_p, is_causal, device) -> bool:
    """Whether ``scaled_dot_product_attention`` runs a fused kernel on ``device`` (memory
    linear in the sequence length) for inputs like ``q, k, v`` (probed on tiny real tensors)."""
    import torch

    try:
        small = [torch.zeros((1, 1, 4, t.shape[-1]), dtype=q.dtype, device=device)
                 for t in (q, k, v)]
        mask = None if attn_mask is None else torch.zeros((1, 1, 4, 4), dtype=attn_mask.dtype,
                                                          device=device)
        return int(torch._fused_sdp_choice(*small, mask, dropout_p, is_causal)) != 0
    except (RuntimeError, TypeError, AttributeError):
        return False


def _tracker(device):
    """A dispatch mode measuring the peak of live tensor bytes, and an SDPA override."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Live(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live = self.peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            returns = func._schema.returns
            flat, _ = tree_flatten(out)
            for i, t in enumerate(flat):
                # views and in-place results share their input's memory
                if not isinstance(t, torch.Tensor) or (
                        i < len(returns) and returns[i].alias_info is not None):
                    continue
                n = t.numel() * t.element_size()
                self.live += n
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, n)
            return out

        def _free(self, n):
            self.live -= n

    class FusedAttention(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                q, k, v = args[:3]
                mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
                p = args[4] if len(args) > 4 else kwargs.get("dropout_p", 0.0)
                causal = args[5] if len(args) > 5 else kwargs.get("is_causal", False)
                if _fused_attention_available(q, k, v, mask, p, causal, device):
                    # same output shape, memory (and gradients) linear in the length
                    return (q.mean(-1, keepdim=True) + v.mean(-2, keepdim=True)
                            + k.mean((-1, -2), keepdim=True))
            return func(*args, **kwargs)

    return Live(), FusedAttention()


def network_peak(model, shape, batch: int, *, grad: bool) -> int | None:
    """Simulated peak bytes of one evaluation of ``model`` on ``(batch, *shape)``.

    ``grad``: a forward and backward pass (``model.vjp``) instead of a forward pass. Returns
    ``None`` for a model that is not a torch network (:class:`invdiff_models.adapter.
    TorchScoreModel`) or when the simulation cannot run the network on the meta device.

    Examples
    --------
    >>> import numpy as np, torch
    >>> import invdiff as ivd
    >>> from invdiff_models.adapter import TorchScoreModel
    >>> from invdiff.cli._budget import network_peak
    >>> net = torch.nn.Conv2d(3, 3, 3, padding=1)
    >>> model = TorchScoreModel(net, ivd.processes.VP.linear(), "eps",
    ...                         forward=lambda n, x, t: n(x))
    >>> n = network_peak(model, (3, 64, 64), 2, grad=False)
    >>> round(n / (2 * 3 * 64 * 64 * 4), 2)  # input and output, times the allocator's margin
    2.6
    """
    import torch
    from torch.func import functional_call

    net = getattr(model, "net", None)
    if not isinstance(net, torch.nn.Module) or not callable(getattr(model, "_forward", None)):
        return None
    try:
        device = torch.device(getattr(model, "device", "cpu"))
        dtype = getattr(model, "dtype", torch.float32)
    except (StopIteration, RuntimeError, TypeError):  # a network without parameters
        device, dtype = torch.device("cpu"), torch.float32
    meta = {name: torch.empty_like(p, device="meta")
            for name, p in [*net.named_parameters(), *net.named_buffers()]}
    meta = {f"net.{k}": v for k, v in meta.items()}
    time_dtype = torch.float32 if device.type == "mps" else torch.float64
    live, attention = _tracker(device)
    apply = as_module(model)
    process = model.process
    t_mid = 0.5 * (float(process.t_min) + float(process.t_max))
    try:
        with attention, live:
            x = torch.empty((batch, *shape), dtype=dtype, device="meta")
            t = torch.full((batch,), t_mid, dtype=time_dtype, device="meta")
            if grad:
                x.requires_grad_(True)
                with torch.enable_grad():
                    out = functional_call(apply, meta, (x, t))
                    (g,) = torch.autograd.grad(out, x, torch.ones_like(out))
                del g
            else:
                with torch.no_grad():
                    out = functional_call(apply, meta, (x, t))
            del out, x, t
    except Exception:  # noqa: BLE001 - an op without a meta kernel: no estimate
        return None
    return int(ALLOCATOR_FACTOR * live.peak)


def sample_bytes(shape, batch: int, samples: int, itemsize: int = 4) -> int:
    """Memory of the method's arrays for one batch plus the stored samples and summaries.

    Examples
    --------
    >>> from invdiff.cli._budget import sample_bytes
    >>> sample_bytes((1, 2, 2), 1, 1)  # 4 bytes x 4 pixels x (12 state images + 4 stored)
    256
    """
    n = math.prod(shape)
    # the samples on the device, a sorted copy for the quantiles, float64 host copies
    return itemsize * n * (STATE_IMAGES * batch) + n * samples * (itemsize * 2 + 8)


def evaluation_seconds(model, shape, batch: int, *, grad: bool, like) -> float:
    """Wall time of one evaluation of ``model`` on a ``(batch, *shape)`` batch (measured).

    ``like``: an array of the model's namespace and device (the batch is built like it).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> from invdiff.cli._budget import evaluation_seconds
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> evaluation_seconds(prior, (4,), 2, grad=False, like=np.zeros(1)) >= 0
    True
    """
    from .._array_api import device_of, namespace
    from ._io import synchronize

    xp = namespace(like=like)
    x = xp.zeros((batch, *shape), dtype=like.dtype, device=device_of(like))
    process = model.process
    t = 0.5 * (float(process.t_min) + float(process.t_max))
    start = time.perf_counter()
    if grad and callable(getattr(model, "vjp", None)):
        out = model.vjp(x, t, xp.ones_like(x))[1]
    else:
        out = model(x, t)
    synchronize(out)
    return time.perf_counter() - start


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
