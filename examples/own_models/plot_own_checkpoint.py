r"""
Your own checkpoint, end to end: ADM and NCSN++
===============================================

:func:`invdiff_models.load_checkpoint` reads the files the papers' code released, in their
original formats, and returns a ScoreModel that every method takes. For a real model you
need two things:

* **the weights**, downloaded by hand (nothing is fetched at run time): e.g. DPS's FFHQ-256
  ADM ``ffhq_10m.pt`` (linked from the README of the DPS repository, ``DPS2022/
  diffusion-posterior-sampling``), OpenAI's ``lsun_bedroom.pt`` (``openai/guided-diffusion``),
  a RectifiedFlow ``checkpoint_8.pth`` (``gnobitab/RectifiedFlow``), or a diffusers folder;
* **the configuration** the network was built with: the keyword arguments of
  guided-diffusion's ``create_model`` for ADM, the ``model`` and ``data`` sections of the
  score-SDE config for NCSN++ (:doc:`/checkpoints` lists them for the released files).

For FFHQ-256 that is::

    import invdiff_models as ivm

    adm_config = {"image_size": 256, "num_channels": 128, "num_res_blocks": 1,
                  "channel_mult": "", "learn_sigma": True, "class_cond": False,
                  "attention_resolutions": 16, "num_heads": 4, "num_head_channels": 64,
                  "num_heads_upsample": -1, "use_scale_shift_norm": True, "dropout": 0.0,
                  "resblock_updown": True, "use_fp16": False,
                  "use_new_attention_order": False}
    model = ivm.load_checkpoint("ffhq_10m.pt", arch="adm", config=adm_config,
                                device="cuda")

No such file can be downloaded while these pages are built, so this example writes *small,
untrained* checkpoints in exactly the original formats (a plain ``state_dict`` for ADM;
score-SDE's ``{"model", "ema", "optimizer", "step"}`` container for NCSN++), loads them with
the same calls, and runs a method on each. With random weights the unobserved pixels are
noise; the observed ones are reproduced, because the likelihood enforces them. With the real
file, the same lines restore the image.
"""

import importlib.resources
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import torch

import invdiff as ivd
import invdiff_models as ivm
from invdiff_models import adm, ncsnpp

torch.manual_seed(0)  # the random initialisation of the stand-in networks
folder = tempfile.mkdtemp(prefix="invdiff-checkpoints-")

# %%
# ADM (guided-diffusion): a plain state dict
# ------------------------------------------
# The configuration has the keys of guided-diffusion's ``create_model``; only the sizes
# differ from FFHQ-256's.
adm_config = {"image_size": 32, "num_channels": 32, "num_res_blocks": 1,
              "channel_mult": "1,2,2", "learn_sigma": True, "class_cond": False,
              "attention_resolutions": "16", "num_heads": 4, "num_head_channels": 16,
              "num_heads_upsample": -1, "use_scale_shift_norm": True, "dropout": 0.0,
              "resblock_updown": True, "use_fp16": False, "use_new_attention_order": False}
torch.save(adm.build(adm_config).state_dict(), os.path.join(folder, "adm_small.pt"))

model = ivm.load_checkpoint(os.path.join(folder, "adm_small.pt"), arch="adm", config=adm_config)
print("ADM:", f"{sum(p.numel() for p in model.net.parameters()):,} parameters;",
      "process", model.process, "| prediction", model.prediction,
      "| data range", model.data_range, "| learned variance", hasattr(
          model, "predict_with_log_variance"))

# %%
# NCSN++ (RectifiedFlow): the score-SDE checkpoint container
# ----------------------------------------------------------
# ``save_checkpoint`` of score-SDE writes the model's state dict (with the ``module.``
# prefix of ``DataParallel``), the optimizer, the step and the EMA as a *list* of shadow
# parameters in ``parameters()`` order. The loader applies the EMA copy, as RectifiedFlow's
# sampler does.
rf_config = {
    "training": {"sde": "rectified_flow"},
    "model": {"nf": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [8],
              "embedding_type": "fourier", "fourier_scale": 16, "scale_by_sigma": False,
              "fir": True, "fir_kernel": [1, 3, 3, 1], "skip_rescale": True,
              "resblock_type": "biggan", "progressive": "output_skip",
              "progressive_input": "input_skip", "progressive_combine": "sum",
              "attention_type": "ddpm", "init_scale": 0.0, "nonlinearity": "swish",
              "normalization": "GroupNorm", "conditional": True, "resamp_with_conv": True,
              "conv_size": 3, "dropout": 0.0, "sigma_max": 378, "sigma_min": 0.01,
              "num_scales": 2000},
    "data": {"image_size": 16, "num_channels": 3, "centered": True},
}
net = ncsnpp.build(rf_config)
trainable = [p.detach().clone() for p in net.parameters() if p.requires_grad]
torch.save({"optimizer": {}, "step": 0,
            "model": {f"module.{k}": v for k, v in net.state_dict().items()},
            "ema": {"decay": 0.999, "num_updates": 0, "shadow_params": trainable}},
           os.path.join(folder, "checkpoint_8.pth"))

flow_model = ivm.load_checkpoint(os.path.join(folder, "checkpoint_8.pth"), arch="ncsnpp",
                                 config=rf_config)
print("NCSN++:", f"{sum(p.numel() for p in flow_model.net.parameters()):,} parameters;",
      "process", flow_model.process, "| prediction", flow_model.prediction,
      "| loaded", flow_model.source.replace(folder + os.sep, ""))

# %%
# End to end: a method on each
# ----------------------------
# Inpainting (30 % of the pixels observed, :math:`\sigma_y = 0.05`) of a held-out photograph
# in :math:`[-1, 1]`, the range of both models: DMPS on the ADM (DDPM ancestral sampler, 50
# respaced steps), DMPS-flow on the NCSN++ flow (its default 50 Euler steps).
crops = importlib.resources.files("invdiff") / "data" / "demo_images.npz"
with importlib.resources.as_file(crops) as path, np.load(path) as f:
    photo = torch.from_numpy(f["astronaut_32"] / 127.5 - 1.0).float()[None]
rng = ivd.random.Generator(0)
results = []
for name, m, x_true, method in (("ADM + DMPS", model, photo, ivd.methods.dmps),
                                ("NCSN++ + DMPS-flow", flow_model, photo[..., ::2, ::2],
                                 ivd.methods.dmps_flow)):
    shape = tuple(x_true.shape[1:])
    op = ivd.operators.Inpainting.random(shape, 0.3, rng=rng, like=x_true)
    y = ivd.measurements.measure(op, x_true, noise=0.05, rng=rng)
    x = method(m, op, y[0], 0.05, n=1, steps=50, rng=rng).clamp(-1, 1)
    seen = op.apply(torch.ones_like(x_true)) > 0
    rms = float(((x - x_true)[seen.expand_as(x)] ** 2).mean().sqrt())
    print(f"{name}: RMS error on the observed pixels {rms:.3f} (sigma_y = 0.05)")
    results.append((name, x_true, torch.where(seen, y, torch.nan), x))

# %%
# The picture
# -----------


def rgb(x):
    return ((x[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()


fig, axes = plt.subplots(2, 3, figsize=(7.5, 5))
for r, (name, x_true, y_show, x) in enumerate(results):
    for c, (img, title) in enumerate(((x_true, "ground truth"), (y_show, "measurement"),
                                      (x, "untrained prior"))):
        axes[r, c].imshow(np.nan_to_num(rgb(img), nan=0.0), interpolation="nearest")
        axes[r, c].set_title(title, fontsize=9)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, fontsize=9)
fig.suptitle("Checkpoints in the original formats, loaded and run end to end", fontsize=10)
fig.tight_layout()
plt.show()
