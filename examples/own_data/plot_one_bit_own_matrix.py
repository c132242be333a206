r"""
1-bit compressed sensing from measured signs, with your own matrix
===================================================================

Your instrument measured :math:`M = 300` signs :math:`y = \operatorname{sign}(A u + n)` of a
28 × 28 image :math:`u` (:math:`N = 784`, pixels in :math:`[0, 1]`), with a matrix
:math:`A` you know, and stored both in files. Three steps turn them into what QCS-SGM
(Meng & Kabashima, ICLR 2023) needs:

1. **bins from the signs**: each sign says in which interval :math:`A u + n` fell, ``+1``
   :math:`\to [0, \infty)`, ``-1`` :math:`\to (-\infty, 0)`:
   :meth:`Quantizer.sign().bins_from_values <invdiff.measurements.Quantizer.bins_from_values>`;
2. **the prior's units**: the bundled MNIST prior models :math:`x = 2u - 1 \in [-1, 1]`, so
   :math:`A u = (A/2)\,x + A\mathbf 1/2`: the prior must see the matrix :math:`A/2` and the
   bin edges shifted by :math:`-A\mathbf 1/2`
   (:func:`~invdiff.measurements.to_prior_units`). Forgetting this asks the prior for the
   wrong image; the last figure shows by how much;
3. **the image shape**: ``in_shape=(1, 28, 28)`` tells the method how the columns of
   :math:`A` map to pixels (row-major).
"""

import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

# %%
# The image (a stand-in for yours)
# --------------------------------
# A held-out MNIST test digit (index 9000, never seen by the prior) when the data are found
# (``../shared/data/mnist`` or ``$INVDIFF_MNIST_DIR``); otherwise a digit drawn with Pillow.
from PIL import Image, ImageDraw  # noqa: E402

import invdiff as ivd
import invdiff_models as ivm
from invdiff_models.training import default_mnist_dir, load_mnist  # noqa: E402

try:
    u = load_mnist(default_mnist_dir(), [9000])[0].astype(np.float64) / 255.0
    source = "held-out MNIST digit 9000"
except (OSError, ValueError):
    canvas = Image.new("L", (28, 28))
    ImageDraw.Draw(canvas).line([(8, 6), (20, 6), (12, 23)], fill=255, width=3)
    u = np.asarray(canvas, dtype=np.float64) / 255.0
    source = "a 7 drawn with Pillow (MNIST data not found)"
print("image:", source)

# %%
# What your instrument gives you: a matrix file and a signs file
# --------------------------------------------------------------
rng = np.random.default_rng(0)
M, N, sigma = 300, 28 * 28, 0.05
A = rng.normal(0.0, 1.0 / np.sqrt(M), size=(M, N))  # i.i.d. N(0, 1/M)
signs = np.where(A @ u.ravel() + sigma * rng.normal(size=M) >= 0, 1, -1).astype(np.int8)
folder = tempfile.mkdtemp(prefix="invdiff-one-bit-")
np.save(os.path.join(folder, "A.npy"), A)
np.save(os.path.join(folder, "signs.npy"), signs)
print(f"{M} signs for {N} pixels; {int((signs > 0).sum())} are +1")

# %%
# From the files to the prior's problem
# -------------------------------------
# Everything goes to torch (the prior is a torch network), in float32.
A = torch.from_numpy(np.load(os.path.join(folder, "A.npy"))).float()
signs = torch.from_numpy(np.load(os.path.join(folder, "signs.npy")))
lower, upper = ivd.measurements.Quantizer.sign().bins_from_values(signs, like=A)
model = ivm.load("mnist")
A_x, lower_x, upper_x = ivd.measurements.to_prior_units(
    A, lower, upper, data_range=(0.0, 1.0), prior_range=model.data_range)
print("bins of the first 3 measurements, data units: ", lower[:3].tolist(), upper[:3].tolist())
print("                               prior units:", lower_x[:3].tolist(), upper_x[:3].tolist())

# %%
# QCS-SGM
# -------
# Annealed Langevin over a geometric ladder of noise levels with the closed-form quantized
# likelihood, at the paper's step size ε = 2e-4. The paper's MNIST schedule is 232 levels ×
# 5 steps (1160 network evaluations per sample; 22.5 dB on this digit); to stay within a few
# seconds this example takes 100 levels × 2 steps from 100 to 0.02 (in :math:`[-1, 1]`
# units: the paper's 50 → 0.01 in :math:`[0, 1]`), and draws 4 posterior samples.
ladder = ivd.processes.VE.geometric(100.0, 0.02, 100)


def qcs(A, lower, upper):
    start = time.perf_counter()
    x = ivd.methods.qcs_sgm(model, A, lower, upper, sigma, n=4, in_shape=(1, 28, 28),
                            process=ladder, steps_each=2, rng=1)
    return (x.clamp(-1, 1) + 1) / 2, time.perf_counter() - start  # back to [0, 1]


u_hat, seconds = qcs(A_x, lower_x, upper_x)
u_raw, _ = qcs(A, lower, upper)  # the mistake: data-unit matrix and bins

truth = torch.from_numpy(u).float()[None, None]


def psnr(images):
    return float(ivd.metrics.psnr(images.mean(dim=0, keepdim=True), truth, data_range=1.0)[0])


print(f"QCS-SGM, converted units: {psnr(u_hat):.1f} dB ({seconds:.1f} s); "
      f"raw A and bins: {psnr(u_raw):.1f} dB")

# %%
# The picture
# -----------
# The posterior mean with the converted problem, two of its samples, and the mean when
# :math:`A` and the bins are passed as they are (the prior then reconstructs an image whose
# measurements match in *its* units: too faint, with a biased background).
panels = [(truth[0, 0], "your image"), (u_hat[0, 0], "sample 1"), (u_hat[1, 0], "sample 2"),
          (u_hat.mean(dim=0)[0], f"mean, {psnr(u_hat):.1f} dB"),
          (u_raw.mean(dim=0)[0], f"raw units, {psnr(u_raw):.1f} dB")]
fig, axes = plt.subplots(1, len(panels), figsize=(11, 2.6))
for ax, (img, title) in zip(axes, panels, strict=True):
    ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"1-bit CS, M = {M} signs of N = {N} pixels, QCS-SGM with the bundled MNIST prior",
             fontsize=10)
fig.tight_layout()
plt.show()
