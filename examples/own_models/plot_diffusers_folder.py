r"""
Use a diffusers ``UNet2DModel`` folder as the prior
===================================================

Any DDPM trained with Hugging Face diffusers can serve as the prior, straight from a local folder:
:func:`invdiff_models.hub.from_diffusers` reads the ``UNet2DModel`` and the scheduler's
:math:`\beta` schedule (nothing is downloaded; ``local_files_only=True``) and returns a
ScoreModel in invdiff's conventions.

No pretrained weights can be fetched while the docs are built, so this example writes a
*small, untrained* UNet in exactly the layout ``DDPMPipeline.save_pretrained`` produces (a
Hub download such as ``google/ddpm-cifar10-32`` has the same layout) and then checks the two
conventions the adapter takes care of:

* time: invdiff's DDPM step :math:`k \in \{1, \dots, T\}` is diffusers' 0-indexed timestep
  :math:`k - 1`, and the process is rebuilt from the scheduler's ``betas``;
* prediction: ``epsilon`` is used as is, ``v_prediction`` is converted to :math:`\varepsilon`
  (:math:`\varepsilon = a_t v + b_t x_t`), ``sample`` becomes an :math:`x_0` prediction.

Finally it runs DMPS (an ancestral sampler plus the DMPS likelihood) for an inpainting problem.
With an untrained network the missing pixels are noise; the observed pixels are reproduced,
because the likelihood enforces them. Point ``from_diffusers`` at a trained folder and the
same lines restore the image.
"""


import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.utils import logging as diffusers_logging

import invdiff as ivd
from invdiff_models import hub

torch.manual_seed(0)  # the random initialisation of the demo UNet
diffusers_logging.set_verbosity_error()  # no hints about optional speed-ups in the output

# %%
# A folder in the diffusers layout
# --------------------------------
unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, layers_per_block=1,
                   block_out_channels=(16, 32), norm_num_groups=8,
                   down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                   up_block_types=("AttnUpBlock2D", "UpBlock2D"))
scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                          prediction_type="epsilon")
folder = tempfile.mkdtemp(prefix="ddpm-demo-")
DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)

layout = []
for root, _dirs, files in sorted(os.walk(folder)):
    depth = os.path.relpath(root, folder).count(os.sep) + (root != folder)
    if root != folder:
        layout.append("  " * (depth - 1) + os.path.basename(root) + "/")
    layout += ["  " * depth + f for f in sorted(files)]
print("\n".join(layout))

# %%
# Load it as a ScoreModel
# -----------------------
model = hub.from_diffusers(folder)
print(model, model.process.T, model.prediction)

# The process is the scheduler's: alpha_bar_k agrees for every k (to the float32 precision
# in which diffusers accumulates the product; invdiff accumulates in float64).
k = np.arange(1, 1001)
ab_ours = np.array([model.process.alpha_bar(int(i)) for i in k])
ab_theirs = scheduler.alphas_cumprod.double().numpy()
print("max |alpha_bar difference|:", np.abs(ab_ours - ab_theirs).max())

# The network sees t - 1: model(x, k) is diffusers' unet(x, k - 1).sample.
rng = ivd.random.Generator(0)
x = rng.normal((4, 1, 16, 16), like=torch.zeros(1))
with torch.no_grad():
    theirs = unet(x, torch.tensor(499)).sample
ours = model(x, 500)
print("max |eps difference| at k = 500:", float((ours - theirs).abs().max()))

# %%
# Restore with DMPS
# -----------------
# The image: a smooth pattern in [-1, 1]. The measurement keeps a random 40 % of the pixels
# with noise sigma_y = 0.05. DMPS is the DDPM ancestral sampler with the DMPS pseudo-likelihood
# added with weight 1.75 (the recipe :func:`invdiff.methods.dmps` wraps, with the paper's
# 1000 steps; 100 here to keep the example quick).
u = torch.linspace(-1, 1, 16, dtype=torch.float32)
truth = (torch.sin(3 * u)[:, None] * torch.cos(2 * u)[None, :])[None, None]
op = ivd.operators.Inpainting.random((1, 16, 16), 0.4, rng=rng, like=truth)
sigma_y = 0.05
y = ivd.measurements.measure(op, truth, noise=sigma_y, rng=rng)
likelihood = ivd.likelihoods.DMPS(op, y, sigma_y=sigma_y, process=model.process)
# variance="beta_tilde": the DDPM posterior variance (this UNet has no learned variance).
samples = ivd.samplers.ancestral(model, rng.normal((4, 1, 16, 16), like=truth),
                                 guidance=likelihood, scale=1.75, steps=100, rng=rng,
                                 clip_x0=(-1.0, 1.0), variance="beta_tilde")
observed = op.apply(torch.ones_like(truth)) > 0
rms = (((samples - truth) * observed) ** 2).sum(dim=(1, 2, 3)) / observed.sum()
print(f"RMS error on the observed pixels (sigma_y = {sigma_y}):", rms.sqrt().tolist())

# %%
# The picture
# -----------
fig = plt.figure(figsize=(12, 6.5))
ax = fig.add_subplot(2, 3, 1)
ax.axis("off")
ax.text(0.0, 1.0, "\n".join(["<folder>/"] + ["  " + line for line in layout]),
        family="monospace", fontsize=9, va="top")
ax.set_title("DDPMPipeline.save_pretrained layout")

ax = fig.add_subplot(2, 3, 2)
ax.semilogy(k, ab_theirs, lw=4, alpha=0.4, label="scheduler.alphas_cumprod")
ax.semilogy(k, ab_ours, "k--", lw=1, label="model.process.alpha_bar(k)")
ax.set_xlabel("DDPM step k")
ax.legend(fontsize=8)
ax.set_title("one forward process")

ax = fig.add_subplot(2, 3, 3)
ax.plot(theirs.flatten(), ours.flatten(), ".", ms=2)
lims = [float(theirs.min()), float(theirs.max())]
ax.plot(lims, lims, "k:", lw=1)
ax.set_xlabel("unet(x, 499).sample")
ax.set_ylabel("model(x, 500)")
ax.set_title("same ε prediction")

images = [(truth[0, 0], "ground truth"),
          (torch.where(observed, y, torch.nan)[0, 0], "measurement (40 % of pixels)"),
          (samples[0, 0], "DMPS, untrained prior")]
for i, (img, title) in enumerate(images):
    ax = fig.add_subplot(2, 3, 4 + i)
    ax.imshow(img.numpy(), cmap="gray", vmin=-1, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()
