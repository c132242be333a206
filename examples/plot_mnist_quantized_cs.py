r"""
1-bit compressed sensing of MNIST digits: QCS-SGM, QCS-SGM+ and BIHT
====================================================================

Each 28 × 28 digit (:math:`N = 784`) is observed through :math:`M = 200` random projections,
corrupted by noise and quantized to **one bit**: only the sign survives,

.. math:: y = \operatorname{sign}(A x_0 + n), \qquad A_{ij} \sim \mathcal N(0, 1/M),
          \quad n \sim \mathcal N(0, 0.05^2 I).

That is 200 bits for a 784-pixel image, the setting of Meng & Kabashima's QCS-SGM paper
(ICLR 2023). We compare

* **QCS-SGM**: annealed Langevin dynamics with the closed-form quantized pseudo-likelihood
  (:math:`A A^\top` treated as diagonal), with the bundled MNIST prior;
* **QCS-SGM+**: the same sampler with expectation propagation for the likelihood (AAAI 2024);
* **BIHT**: binary iterative hard thresholding, the classic sparsity method (DCT basis; it
  recovers only a direction, so it is given the true norm of each image: an oracle that
  favours it).

The digits are the held-out MNIST test images 9000–9003 (never seen by the prior in
training). The data folder is ``../shared/data/mnist`` or ``$INVDIFF_MNIST_DIR``; without it,
or without the bundled weights, the example only says what is missing.
"""

# Thumbnail where this example is not run (the fast docs build):
# the figure of the quantized_cs benchmark (same prior, same methods).
# sphinx_gallery_thumbnail_path = '../benchmarks/results/quantized_cs-examples.png'


import time

import matplotlib.pyplot as plt
import torch

import invdiff as ivd
import invdiff_models as ivm
from invdiff_models.training import default_mnist_dir, load_mnist

data_dir = default_mnist_dir()
missing = []
if not (data_dir / "t10k-images-idx3-ubyte.gz").is_file():
    missing.append(f"MNIST test images in {data_dir} (set INVDIFF_MNIST_DIR)")
if "mnist" not in ivm.bundled.available():
    missing.append("the bundled 'mnist' prior (invdiff_models/bundled/mnist.safetensors)")
ready = not missing
print("ready" if ready else "skipped, missing: " + "; ".join(missing))

# %%
# Data, matrix and measurement
# ----------------------------
# Images are scaled to [-1, 1], the range the bundled prior was trained on. Everything is a
# torch tensor (the prior is a torch network); the invdiff calls are the same with NumPy.
M, sigma = 200, 0.05
n_images = 2  # two held-out digits keep the example under a minute on 2 CPU cores
rng = ivd.random.Generator(0)
if ready:
    model = ivm.load("mnist")
    x_true = torch.from_numpy(load_mnist(data_dir, range(9000, 9000 + n_images))).float()[:, None]
    x_true = x_true / 127.5 - 1.0  # (n_images, 1, 28, 28)
    flat = x_true.reshape(n_images, -1)
    A = ivd.operators.gaussian_matrix(M, 784, rng=rng, like=flat)
    y, (lower, upper) = ivd.measurements.measure(
        A, flat, noise=sigma, quantizer=ivd.measurements.Quantizer.sign(), rng=rng)
    print(f"{M} bits per image; {int((y > 0).sum())} of {y.numel()} signs are +1")

# %%
# Reconstructions
# ---------------
# Both QCS methods run with their paper defaults: annealed Langevin over the noise levels of
# the (re-expressed) prior, step size 2e-4, 5 steps per level; QCS-SGM+ weighs the likelihood
# by the norm-matched rule with gamma = 0.5 and runs 5 EP iterations per step.
results, seconds = {}, {}
if ready:
    runs = {
        "QCS-SGM": lambda: ivd.methods.qcs_sgm(model, A, lower, upper, sigma, rng=rng,
                                               in_shape=(1, 28, 28)),
        "QCS-SGM+": lambda: ivd.methods.qcs_sgm_plus(model, A, lower, upper, sigma, rng=rng,
                                                     in_shape=(1, 28, 28)),
        "BIHT (DCT, oracle norm)": lambda: ivd.baselines.biht(
            A, y, sparsity_k=100, basis="dct", shape=(1, 28, 28),
            norm=torch.linalg.vector_norm(flat, dim=1)),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        results[name] = torch.as_tensor(run()).reshape(n_images, 1, 28, 28).clamp(-1, 1)
        seconds[name] = time.perf_counter() - start
        psnr = ivd.metrics.psnr(results[name], x_true, data_range=2.0)
        print(f"{name:24s} PSNR {float(psnr.mean()):5.2f} dB   ({seconds[name]:.1f} s)")

# %%
# The picture
# -----------
if ready:
    rows = [("ground truth", x_true)] + list(results.items())
    fig, axes = plt.subplots(len(rows), n_images, figsize=(3.6, 1.9 * len(rows)),
                             squeeze=False)
    for r, (name, images) in enumerate(rows):
        scores = None if r == 0 else ivd.metrics.psnr(images, x_true, data_range=2.0)
        for c in range(n_images):
            ax = axes[r, c]
            ax.imshow(images[c, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if scores is not None:
                ax.set_title(f"{float(scores[c]):.1f} dB", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"1-bit CS, M = {M} of N = 784, sigma = {sigma}")
else:
    fig, ax = plt.subplots(figsize=(7, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "Example skipped; missing:\n" + "\n".join(missing), ha="center",
            va="center", wrap=True)
fig.tight_layout()
plt.show()
