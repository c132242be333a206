r"""
On a GPU: the same code with CuPy or torch CUDA arrays
======================================================

The core is written once against the Array API standard: a function of invdiff computes in
the namespace and on the device of the arrays it is given, and returns arrays of the same
kind. Nothing in the code below names a backend except the line that makes the input; the
prior runs where ``ivm.load(..., device=...)`` put it, and arrays cross to it without a copy
when they are already on its device (DLPack for CuPy).

What runs here depends on the machine: NumPy and torch on the CPU always, torch CUDA and CuPy
when a GPU is present (the page you are reading was built on a machine without one, so its
table has the CPU rows only; run the script on a GPU machine for the others).
"""

import importlib.resources
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import invdiff as ivd
import invdiff_models as ivm

# %%
# One problem, written once
# -------------------------
# Deblurring (Gaussian, σ = 1 pixel) of a 32 × 32 held-out photograph with DMPS, 4
# posterior samples, 50 respaced steps (small, so that the CPU rows take seconds; on a GPU
# the time hardly grows with the image until the device is busy). ``like`` fixes the
# namespace, device and dtype of everything: the measurement, the operator's factors, the
# start noise, the samples.
crops = importlib.resources.files("invdiff") / "data" / "demo_images.npz"
with importlib.resources.as_file(crops) as path, np.load(path) as f:
    photo = (f["coffee_32"] / 127.5 - 1.0)[None]  # NumPy float64, (1, 3, 32, 32)


def restore(like, model):
    xp = ivd._array_api.namespace(like)
    x_true = xp.asarray(photo, dtype=like.dtype, device=ivd._array_api.device_of(like))
    op = ivd.operators.SeparableBlur.gaussian((3, 32, 32), sigma=1.0, size=7)
    rng = ivd.random.Generator(0)
    y = ivd.measurements.measure(op, x_true, noise=0.02, rng=rng)
    start = time.perf_counter()
    x = ivd.methods.dmps(model, op, y[0], 0.02, n=4, steps=50, rng=rng)
    float(xp.sum(x))  # wait for the device before stopping the clock
    seconds = time.perf_counter() - start
    psnr = ivd.metrics.psnr(xp.mean(xp.clip(x, -1, 1), axis=0)[None], x_true, data_range=2.0)
    return x, seconds, float(psnr[0])


# %%
# Every backend this machine has
# ------------------------------
runs = {"NumPy (CPU)": (np.zeros(1, dtype=np.float32), "cpu"),
        "torch (CPU)": (torch.zeros(1), "cpu")}
if torch.cuda.is_available():
    runs["torch (CUDA)"] = (torch.zeros(1, device="cuda"), "cuda")
    try:
        import cupy

        runs["CuPy (CUDA)"] = (cupy.zeros(1, dtype=cupy.float32), "cuda")
    except ImportError:
        print("CuPy is not installed: pip install cupy-cuda12x")
else:
    print("no CUDA GPU here: CPU rows only")

results = {}
for name, (like, device) in runs.items():
    model = ivm.load("natural", device=device)
    x, seconds, psnr = restore(like, model)
    results[name] = (seconds, psnr, x)
    print(f"{name:14s} {type(x).__module__.split('.')[0]:6s} {str(x.dtype):15s} "
          f"{seconds:6.2f} s   PSNR {psnr:.2f} dB")

# %%
# The numbers differ a little between backends (each has its own random stream: the same
# seed gives the same numbers on the same backend and device, not across them), the
# quality does not. The picture: one posterior sample from each backend, and the times.


def rgb(x):
    a = x.get() if hasattr(x, "get") else (x.cpu().numpy() if hasattr(x, "cpu") else x)
    return ((np.asarray(a)[0].transpose(1, 2, 0) + 1) / 2).clip(0, 1)


fig, axes = plt.subplots(1, len(results) + 1, figsize=(3 * (len(results) + 1), 3))
for ax, (name, (_, psnr, x)) in zip(axes, results.items(), strict=False):
    ax.imshow(rgb(x))
    ax.set_title(f"{name}\n{psnr:.1f} dB", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
names = list(results)
axes[-1].barh(names, [results[n][0] for n in names], color="tab:blue")
axes[-1].set_xlabel("seconds (4 samples × 50 steps)")
axes[-1].invert_yaxis()
fig.tight_layout()
plt.show()
