r"""
Super-resolution, deblurring and colorization with DMPS, and its uncertainty
============================================================================

A held-out photograph (scikit-image's *astronaut*, never seen by the bundled natural-image
prior in training) is degraded three ways, each with Gaussian noise :math:`\sigma_y = 0.05`
on the [-1, 1] scale, the settings of the DMPS paper (Meng & Kabashima, ACML 2024):

* **SR×4**: bicubic downsampling by 4 (:class:`~invdiff.operators.SuperResolution`);
* **deblur**: Gaussian blur, :math:`\sigma = 3` pixels
  (:meth:`~invdiff.operators.SeparableBlur.gaussian`);
* **colorization**: the mean of the RGB channels (:class:`~invdiff.operators.Colorization`).

DMPS draws several posterior samples per problem. Their mean is the estimate; their
pixel-wise standard deviation shows *where* the measurement leaves the image uncertain: edges
and textures for SR and deblurring, the hue of large regions for colorization.

The bundled prior is small (1.5 M parameters, trained on nine photographs shipped inside Python
packages) and runs here with 100 DDPM steps instead of the paper's 1000 so that the example
takes well under a minute on two CPU cores: expect plausible, not state-of-the-art, images.
"""

# Thumbnail where this example is not run (the fast docs build):
# the figure of `invdiff demo` (same prior, same method).
# sphinx_gallery_thumbnail_path = '_static/invdiff_demo.png'


import time

import matplotlib.pyplot as plt
import torch

import invdiff as ivd
import invdiff_models as ivm
from invdiff_models.evaluate import heldout_images

missing = []
if "natural" not in ivm.bundled.available():
    missing.append("the bundled 'natural' prior (invdiff_models/bundled/natural.safetensors)")
try:
    crops = heldout_images("natural")  # (2, 3, 96, 96) in [-1, 1]: astronaut, coffee
except (ModuleNotFoundError, FileNotFoundError) as e:
    missing.append(f"the held-out photographs ({e})")
ready = not missing
print("ready" if ready else "skipped, missing: " + "; ".join(missing))

# %%
# The image and the three operators
# ---------------------------------
# A 64 × 64 crop (a multiple of the prior's downsampling factor 8) keeps the example fast.
size, sigma_y, n_samples, steps = 64, 0.05, 4, 100
shape = (3, size, size)
rng = ivd.random.Generator(0)
if ready:
    torch.set_num_threads(2)
    model = ivm.load("natural")
    x_true = crops[:1, :, 8 : 8 + size, 20 : 20 + size].contiguous()
    operators = {
        "SR×4 (bicubic)": ivd.operators.SuperResolution(4, in_shape=shape, kind="bicubic"),
        "deblur (Gaussian, σ=3)": ivd.operators.SeparableBlur.gaussian(shape, sigma=3.0,
                                                                      size=31),
        "colorization": ivd.operators.Colorization(shape),
    }

# %%
# Measure, then sample the posterior
# ----------------------------------
# One measurement per task; ``n=n_samples`` makes one batched DMPS call return that many
# independent posterior samples of it. :meth:`~invdiff.operators.SVDOperator.pinv` shows
# what the measurement alone says (the minimum-norm image consistent with it).
rows = []
if ready:
    for task, op in operators.items():
        y = ivd.measurements.measure(op, x_true, noise=sigma_y, rng=rng)
        start = time.perf_counter()
        samples = ivd.methods.dmps(model, op, y[0], sigma_y, rng=rng, n=n_samples, steps=steps)
        seconds = time.perf_counter() - start
        samples = samples.clamp(-1, 1)
        mean, std = samples.mean(dim=0, keepdim=True), samples.std(dim=0, keepdim=True)
        psnr = float(ivd.metrics.psnr(mean, x_true, data_range=2.0)[0])
        ssim = float(ivd.metrics.ssim(mean, x_true, data_range=2.0)[0])
        print(f"{task:24s} PSNR {psnr:5.2f} dB  SSIM {ssim:.3f}  ({seconds:.1f} s, "
              f"{n_samples} samples x {steps} steps)")
        rows.append((task, op.pinv(y).clamp(-1, 1), samples[:1], mean, std, psnr))

# %%
# The picture
# -----------
# Columns: ground truth, the pseudo-inverse of the measurement, one posterior sample, the
# posterior mean (with its PSNR) and the pixel-wise posterior standard deviation (averaged
# over the colour channels).


def rgb(x):
    return ((x[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()


if ready:
    fig, axes = plt.subplots(len(rows), 5, figsize=(12, 2.6 * len(rows)))
    for r, (task, pinv, sample, mean, std, psnr) in enumerate(rows):
        panels = [(rgb(x_true), "ground truth"), (rgb(pinv), "pseudo-inverse of y"),
                  (rgb(sample), "one DMPS sample"), (rgb(mean), f"mean, {psnr:.1f} dB")]
        for c, (img, title) in enumerate(panels):
            axes[r, c].imshow(img)
            axes[r, c].set_title(title, fontsize=9)
        im = axes[r, 4].imshow(std[0].mean(dim=0).numpy(), cmap="magma")
        axes[r, 4].set_title("posterior std", fontsize=9)
        fig.colorbar(im, ax=axes[r, 4], fraction=0.046)
        axes[r, 0].set_ylabel(task, fontsize=10)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"DMPS with the bundled natural-image prior ({n_samples} samples per task)")
else:
    fig, ax = plt.subplots(figsize=(7, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "Example skipped; missing:\n" + "\n".join(missing), ha="center",
            va="center", wrap=True)
fig.tight_layout()
plt.show()
