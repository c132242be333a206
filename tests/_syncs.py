"""Count host synchronisations of torch code: every place a device value reaches Python.

A :class:`torch.overrides.TorchFunctionMode` sees each call of a tensor method, so converting a
tensor to a Python number or bool (``float(x)``, ``if x:``, ``x.item()``, ``x.tolist()``), to
NumPy, or moving it to the host is counted whichever tensor it is. On a CPU tensor these are
free; on a GPU each waits for the device to finish all queued work, so hot loops must make
none (DESIGN.md). The count is the same on CPU and GPU, which lets CI check it without one.
"""

from __future__ import annotations

import collections

import torch
from torch.overrides import TorchFunctionMode

SYNCS = frozenset({"__bool__", "__float__", "__int__", "__index__", "__complex__", "item",
                   "tolist", "__array__", "numpy", "cpu", "__format__", "__repr__"})


class SyncCounter(TorchFunctionMode):
    """``with SyncCounter() as c: ...`` then ``c.total`` and ``c.calls`` (a Counter by name).

    With ``device_only=True`` conversions of CPU tensors are not counted (on a GPU run,
    where host-side bookkeeping tensors are harmless); by default every one is, so that a
    CPU run predicts what a GPU run would wait for.
    """

    def __init__(self, device_only: bool = False):
        super().__init__()
        self.device_only = device_only
        self.calls: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCS or (name == "to" and _to_host(args, kwargs or {})):
            on_cpu = bool(args) and isinstance(args[0], torch.Tensor) \
                and args[0].device.type == "cpu"
            if not (self.device_only and on_cpu):
                self.calls[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _to_host(args, kwargs) -> bool:
    """``tensor.to(...)`` that moves a non-CPU tensor to the CPU."""
    if not args or not isinstance(args[0], torch.Tensor) or args[0].device.type == "cpu":
        return False
    target = kwargs.get("device", args[1] if len(args) > 1 else None)
    return isinstance(target, (str, torch.device)) and torch.device(target).type == "cpu"
