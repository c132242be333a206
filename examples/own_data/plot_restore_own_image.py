r"""
Restore your own image
======================

From a PNG on disk to a restored PNG: super-resolution ×4 of a small photograph with DMPS and
the bundled natural-image prior, in about ten lines. The conversions a prior needs happen at
the file boundary, in :mod:`invdiff.io`:

* **range**: the prior was trained on pixels in :math:`[-1, 1]` (``model.data_range``);
  :func:`~invdiff.io.read_image` maps black and white there, :func:`~invdiff.io.write_image`
  maps them back;
* **channels**: RGB (``model.channels``; a grayscale file is repeated to three channels);
* **size**: the network halves the resolution three times, so the *restored* image must have
  a height and width that are multiples of 8 (``model.size_multiple``). For SR×4 the input
  must then be a multiple of 2; ``fit="crop"`` (or ``"pad"``) makes it one.

The same job from the command line: ``invdiff restore --task sr4 --input low.png --output
high.png --samples 4``.
"""

# %%
# Your photograph
# ---------------
# Here a stand-in: a 17 × 16 low-resolution crop of a held-out photograph (scikit-image's
# *astronaut*, never seen by the prior in training), written as a PNG. Replace ``low_png``
# with the path of your own file.
import importlib.resources  # noqa: E402
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image  # noqa: E402

import invdiff as ivd
import invdiff_models as ivm

folder = tempfile.mkdtemp(prefix="invdiff-own-image-")
crops = importlib.resources.files("invdiff") / "data" / "demo_images.npz"  # shipped crops
with importlib.resources.as_file(crops) as path, np.load(path) as f:
    truth_u8 = f["astronaut"]  # (3, 64, 64) uint8, for comparison only
low = Image.fromarray(truth_u8.transpose(1, 2, 0)).resize((16, 16), Image.BICUBIC)
low = Image.fromarray(np.pad(np.asarray(low), ((0, 1), (0, 0), (0, 0)), mode="edge"))
low_png = os.path.join(folder, "low.png")
low.save(low_png)

# %%
# Read it in the prior's range, channels and size
# -----------------------------------------------
# The restored image is 4× the input; ``size_multiple=model.size_multiple // 4`` asks for an
# input whose 4× is a multiple of 8. The file is 17 rows high, so ``fit="crop"`` drops one row
# (``fit="check"``, the default, would refuse it and say which sizes work).
model = ivm.load("natural")
print("prior:", model.data_range, model.channels, "channels, sizes multiple of",
      model.size_multiple)
y = ivd.io.read_image(low_png, model=model, size_multiple=model.size_multiple // 4,
                      fit="crop", like=torch.zeros(0))
print("measurement:", tuple(y.shape), y.dtype, float(y.min()), float(y.max()))

# %%
# Restore: posterior samples with DMPS
# ------------------------------------
# The operator says how the file came about: bicubic downsampling by 4 of an unknown
# 64 × 64 image, plus noise. ``sigma_y = 0.05`` (the DMPS paper's value; it also absorbs
# the mismatch between the real camera and the bicubic model). Four posterior samples, 50
# respaced DDPM steps (the paper uses 1000: slower, a little sharper).
C, h, w = y.shape
op = ivd.operators.SuperResolution(4, in_shape=(C, 4 * h, 4 * w), kind="bicubic")
start = time.perf_counter()
samples = ivd.methods.dmps(model, op, y, 0.05, n=4, steps=50, rng=0)
print(f"{samples.shape[0]} samples of {tuple(samples.shape[1:])} in "
      f"{time.perf_counter() - start:.1f} s")
mean, std = samples.mean(dim=0), samples.std(dim=0)

# %%
# Write the result
# ----------------
# :func:`~invdiff.io.write_image` clips to the range and writes atomically (a temporary file
# renamed into place). The standard deviation is written on a [0, 0.5] scale.
high_png = ivd.io.write_image(os.path.join(folder, "high.png"), mean, data_range=model.data_range)
ivd.io.write_image(os.path.join(folder, "high_std.png"), std.mean(dim=0, keepdim=True),
                   data_range=(0.0, 0.5))
print("wrote", sorted(os.listdir(folder)))
truth = torch.from_numpy(truth_u8[:, :64, :64] / 127.5 - 1.0).float()

def psnr(x):
    return float(ivd.metrics.psnr(x[None].clamp(-1, 1), truth[None], data_range=2.0)[0])


print(f"PSNR against the held-out original: posterior mean {psnr(mean):.2f} dB, "
      f"bicubic pseudo-inverse {psnr(op.pinv(y)):.2f} dB")

# %%
# The picture
# -----------


def show(ax, path_or_array, title, **kw):
    img = np.asarray(Image.open(path_or_array)) if isinstance(path_or_array, str) else \
        path_or_array
    ax.imshow(img, **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


fig, axes = plt.subplots(1, 5, figsize=(12, 2.9))
show(axes[0], low_png, f"low.png ({w}×{h + 1})", interpolation="nearest")
show(axes[1], ((op.pinv(y).clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy(), "pseudo-inverse")
show(axes[2], ((samples[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy(), "one sample")
show(axes[3], str(high_png), "high.png (posterior mean)")
im = axes[4].imshow(std.mean(dim=0).numpy(), cmap="magma", vmin=0)
axes[4].set_title("posterior std", fontsize=9)
axes[4].set_xticks([])
axes[4].set_yticks([])
fig.colorbar(im, ax=axes[4], fraction=0.046, label="[-1, 1] units")
fig.tight_layout()
plt.show()
