r"""
Uncertainty: standard deviation and credible-interval maps, and how far to trust them
=====================================================================================

Posterior samples carry more than an estimate: their pixel-wise spread says where the
measurement leaves the image undetermined. Here DMPS draws 16 posterior samples for the
deblurring of a held-out photograph (Gaussian blur of 1.5 pixels, :math:`\sigma_y = 0.05`),
and we map

* the **posterior standard deviation** of each pixel, and
* the **width of its 90 % credible interval** (between the 5 % and 95 % quantiles of the
  samples),

each with a colour map and a colour bar in the image's units (:math:`[-1, 1]`, so a width of
0.2 is a tenth of the full range), next to the actual error of the posterior mean.

**How far to trust them.** A calibrated 90 % interval contains the truth for 90 % of the
pixels. The coverage benchmark (``python -m benchmarks.coverage``, in :doc:`/benchmarks`)
measured DMPS on held-out MNIST digits with the bundled prior: its intervals cover only
**40 %** (SR×4), **41 %** (inpainting) and **29 %** (denoising) of the pixels, 67–94 % of the
digit's own pixels (4 digits; 41 / 47 / 36 % in an earlier run on 16). DMPS's intervals are
*too narrow*: read the maps as where the uncertainty is, not as how large it is. The
particle filter :func:`invdiff.methods.mcgdiff` comes much closer (79 / 76 / 89 %), at
8–10× the cost. The last panel measures the same on this image.
"""

import importlib.resources

import matplotlib.pyplot as plt
import numpy as np
import torch

import invdiff as ivd
import invdiff_models as ivm

# %%
# Sample the posterior
# --------------------
crops = importlib.resources.files("invdiff") / "data" / "demo_images.npz"
with importlib.resources.as_file(crops) as path, np.load(path) as f:
    x_true = torch.from_numpy(f["astronaut_32"] / 127.5 - 1.0).float()[None]  # (1, 3, 32, 32)
model = ivm.load("natural")
rng = ivd.random.Generator(0)
op = ivd.operators.SeparableBlur.gaussian((3, 32, 32), sigma=1.5, size=9)
y = ivd.measurements.measure(op, x_true, noise=0.05, rng=rng)
samples = ivd.methods.dmps(model, op, y[0], 0.05, n=16, steps=50, rng=rng).clamp(-1, 1)

# %%
# Standard deviation, credible interval, error
# --------------------------------------------
# Per pixel, averaged over the three colour channels for display.
mean = samples.mean(dim=0)
std = samples.std(dim=0)
lo, hi = torch.quantile(samples, 0.05, dim=0), torch.quantile(samples, 0.95, dim=0)
width = hi - lo
error = (mean - x_true[0]).abs()
inside = (x_true[0] >= lo) & (x_true[0] <= hi)
print(f"mean std {float(std.mean()):.3f}; mean 90 % width {float(width.mean()):.3f}; "
      f"mean |error| {float(error.mean()):.3f}")
print(f"coverage of the 90 % intervals: {float(inside.float().mean()):.2f} of the pixels")

# Coverage at every nominal level, for the calibration panel.
levels = np.linspace(0.1, 0.95, 12)
coverage = []
for level in levels:
    q_lo = torch.quantile(samples, (1 - level) / 2, dim=0)
    q_hi = torch.quantile(samples, (1 + level) / 2, dim=0)
    coverage.append(float(((x_true[0] >= q_lo) & (x_true[0] <= q_hi)).float().mean()))

# %%
# The picture
# -----------
# One colour scale for the three maps (0 to the largest 90 % width), so that the
# standard deviation, the interval and the error can be compared by eye.


def rgb(x):
    return ((x.permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()


vmax = float(width.mean(dim=0).max())
fig, axes = plt.subplots(2, 4, figsize=(12, 6.2))
for ax, (img, title) in zip(axes[0], ((x_true[0], "ground truth"),
                                      (y[0], "measurement (blurred, noisy)"),
                                      (samples[0], "one sample"),
                                      (mean, "posterior mean (16 samples)")), strict=True):
    ax.imshow(np.nan_to_num(rgb(img)), interpolation="nearest")
    ax.set_title(title, fontsize=9)
for ax, (img, title) in zip(axes[1][:3], ((std, "posterior std"),
                                          (width, "90 % credible-interval width"),
                                          (error, "|mean - truth|")), strict=True):
    im = ax.imshow(img.mean(dim=0).numpy(), cmap="magma", vmin=0, vmax=vmax,
                   interpolation="nearest")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="[-1, 1] units")
for ax in axes.flat[:7]:
    ax.set_xticks([])
    ax.set_yticks([])
ax = axes[1, 3]
ax.plot(levels, coverage, "o-", label="this image")
ax.plot([0, 1], [0, 1], "k:", label="calibrated")
ax.plot([0.9, 0.9, 0.9], [0.411, 0.467, 0.355], "s", color="tab:red",
        label="benchmark (MNIST)")
ax.set_xlabel("nominal level")
ax.set_ylabel("coverage")
ax.set_xlim(0, 1)
ax.set_ylim(0, 1)
ax.legend(fontsize=7, loc="upper left")
ax.set_title("calibration", fontsize=9)
fig.suptitle("DMPS, Gaussian deblurring, bundled natural-image prior", fontsize=10)
fig.tight_layout()
plt.show()
