"""ADM: the guided-diffusion UNet (Dhariwal & Nichol 2021), as used by DPS and DMPS.

Parameter names and the forward pass follow OpenAI's ``guided_diffusion/unet.py`` so that its
released checkpoints (``ffhq_10m.pt`` of DPS, ``lsun_bedroom.pt`` / ``lsun_cat.pt`` /
ImageNet files) load with ``load_state_dict(strict=True)``. Only 2-D images are supported.

Forward convention of the original: ``net(x, timesteps)`` with ``x`` in ``[-1, 1]`` and
``timesteps`` the integer DDPM step index ``0..T-1``; with ``learn_sigma=True`` the output has
``2 C`` channels, ``[eps, v]`` where ``v`` interpolates the log variance (Nichol & Dhariwal 2021).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._config import as_dict, as_float, as_int

__all__ = ["ADMUNet", "build", "create_model_kwargs", "timestep_embedding"]

#: ImageNet class count used by guided-diffusion when ``class_cond=True``.
NUM_CLASSES = 1000

_DEFAULT_CHANNEL_MULT = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sinusoidal embedding ``[cos(t f_i), sin(t f_i)]`` of (possibly fractional) steps.

    Parameters
    ----------
    timesteps : torch.Tensor
        Shape ``(B,)``; integer or real step indices.
    dim : int
        Embedding width; an odd ``dim`` gets a zero last column.
    max_period : float
        Sets the lowest frequency.
    dtype : torch.dtype
        Computation dtype. guided-diffusion always uses float32; float64 is offered so a
        double-precision copy of the network is double precision throughout.

    Returns
    -------
    torch.Tensor
        Shape ``(B, dim)``.

    Notes
    -----
    ``f_i = exp(-ln(max_period) i / (dim // 2))`` for ``i = 0..dim//2-1``; cosines come first,
    as in guided-diffusion (the reverse of Vaswani et al. and of score-SDE).

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.adm import timestep_embedding
    >>> timestep_embedding(torch.tensor([0, 10]), 4)[0]
    tensor([1., 1., 0., 0.])
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=dtype, device=timesteps.device) / half
    )
    args = timesteps[:, None].to(dtype) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class _GroupNorm32(nn.GroupNorm):
    """GroupNorm(32, C) computed in at least float32 (guided-diffusion's ``GroupNorm32``)."""

    def __init__(self, channels: int):
        super().__init__(32, channels, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            return super().forward(x.float()).to(x.dtype)
        return super().forward(x)


def _zero(module: nn.Module) -> nn.Module:
    # Output convs start at zero in the original so every block begins as the identity.
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class _EmbSequential(nn.Sequential):
    """Sequential that hands the time embedding to the blocks that take one."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, _ResBlock) else layer(x)
        return x


class _Downsample(nn.Module):
    """Stride-2 3x3 conv (key ``op``) or 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        out_channels = out_channels or channels
        if use_conv:
            self.op = nn.Conv2d(channels, out_channels, 3, stride=2, padding=1)
        else:
            if out_channels != channels:
                raise ValueError("pooling cannot change the channel count")
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv (key ``conv``) when ``use_conv``."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class _ResBlock(nn.Module):
    """Residual block with time conditioning (additive or FiLM-style scale/shift).

    With ``up``/``down`` the block also resamples: after the first norm and activation,
    before the first conv, and its skip input with the same (parameter-free) operator.
    """

    def __init__(self, channels: int, emb_channels: int, dropout: float,
                 out_channels: int | None = None, use_conv: bool = False,
                 use_scale_shift_norm: bool = False, up: bool = False, down: bool = False):
        super().__init__()
        out = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            _GroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = _Upsample(channels, False), _Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = _Downsample(channels, False), _Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out if use_scale_shift_norm else out)
        )
        self.out_layers = nn.Sequential(
            _GroupNorm32(out), nn.SiLU(), nn.Dropout(p=dropout),
            _zero(nn.Conv2d(out, out, 3, padding=1)),
        )
        if out == channels:
            self.skip_connection = nn.Identity()
        elif use_conv:
            self.skip_connection = nn.Conv2d(channels, out, 3, padding=1)
        else:
            self.skip_connection = nn.Conv2d(channels, out, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).to(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = torch.chunk(emb_out, 2, dim=1)  # scale first, as in the original
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class _AttentionBlock(nn.Module):
    """Multi-head self-attention over all spatial positions, with a residual connection.

    ``legacy=True`` reads the fused ``qkv`` channels head by head (``[q, k, v]`` per head,
    guided-diffusion's ``QKVAttentionLegacy``, the layout of the released checkpoints);
    ``legacy=False`` reads them as ``[all q | all k | all v]`` (``QKVAttention``).
    """

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1,
                 use_new_attention_order: bool = False):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels:
                raise ValueError(
                    f"channels {channels} is not divisible by num_head_channels "
                    f"{num_head_channels}"
                )
            self.num_heads = channels // num_head_channels
        self.legacy = not use_new_attention_order
        self.norm = _GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = _zero(nn.Conv1d(channels, channels, 1))

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        b, width, length = qkv.shape
        heads = self.num_heads
        ch = width // (3 * heads)
        if self.legacy:
            q, k, v = qkv.reshape(b * heads, 3 * ch, length).split(ch, dim=1)
        else:
            q, k, v = (z.reshape(b * heads, ch, length) for z in qkv.chunk(3, dim=1))
        # Scaling q and k separately by ch^(-1/4) is the original's guard against fp16 overflow.
        scale = 1.0 / math.sqrt(math.sqrt(ch))
        w = torch.bmm((q * scale).transpose(1, 2), k * scale)  # (b*heads, t, s)
        soft_dtype = torch.float32 if w.dtype in (torch.float16, torch.bfloat16) else w.dtype
        w = torch.softmax(w.to(soft_dtype), dim=-1).to(w.dtype)
        a = torch.bmm(v, w.transpose(1, 2))  # (b*heads, ch, t)
        return a.reshape(b, heads * ch, length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        h = self.proj_out(self._attend(self.qkv(self.norm(x))))
        return (x + h).reshape(b, c, *spatial)


class ADMUNet(nn.Module):
    """The ADM UNet with guided-diffusion's parameter names.

    Arguments are those of guided-diffusion's ``UNetModel`` (2-D only); most users call
    :func:`build` with the ``create_model`` keyword arguments instead.

    Parameters
    ----------
    image_size : int
        Recorded only (the network is fully convolutional).
    in_channels, model_channels, out_channels : int
        Input channels, base width, output channels (``2 * in_channels`` with learned sigma).
    num_res_blocks : int
        Residual blocks per resolution.
    attention_resolutions : sequence of int
        Downsampling factors ``ds`` (not resolutions) at which attention is applied.
    dropout : float
        Dropout inside residual blocks (inactive in ``eval()``).
    channel_mult : sequence of float
        Width multiplier per resolution level.
    conv_resample : bool
        Learned 3x3 convs in plain up/down-sampling layers.
    dims : int
        Must be 2.
    num_classes : int or None
        Class-conditional models add a label embedding (``label_emb``).
    use_checkpoint : bool
        Gradient checkpointing in the original; ignored (no effect on the numbers).
    use_fp16 : bool
        Recorded; call :meth:`convert_to_fp16` to run the convolutions in half precision as
        the original does after loading.
    num_heads, num_head_channels, num_heads_upsample : int
        Attention heads; ``num_head_channels != -1`` fixes the head width instead.
    use_scale_shift_norm : bool
        FiLM conditioning ``GN(h) (1 + scale) + shift``.
    resblock_updown : bool
        Residual blocks (rather than plain layers) for up/down-sampling.
    use_new_attention_order : bool
        qkv channel layout (see the attention block).

    Notes
    -----
    Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis", NeurIPS 2021.
    Computation follows the original: the time embedding, the group norms and the attention
    softmax run in float32 when the convolutions run in float16; a float64 copy
    (``net.double()``) runs in float64 throughout.

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.adm import ADMUNet
    >>> net = ADMUNet(32, 3, 32, 6, 1, attention_resolutions=(2,), channel_mult=(1, 2),
    ...               num_head_channels=16).eval()
    >>> net(torch.zeros(1, 3, 16, 16), torch.tensor([10])).shape
    torch.Size([1, 6, 16, 16])
    """

    def __init__(self, image_size: int, in_channels: int, model_channels: int, out_channels: int,
                 num_res_blocks: int, attention_resolutions=(), dropout: float = 0.0,
                 channel_mult=(1, 2, 4, 8), conv_resample: bool = True, dims: int = 2,
                 num_classes: int | None = None, use_checkpoint: bool = False,
                 use_fp16: bool = False, num_heads: int = 1, num_head_channels: int = -1,
                 num_heads_upsample: int = -1, use_scale_shift_norm: bool = False,
                 resblock_updown: bool = False, use_new_attention_order: bool = False):
        super().__init__()
        if dims != 2:
            raise ValueError(f"dims must be 2 (images); received {dims}")
        where = "ADMUNet"
        image_size = as_int(image_size, "image_size", where=where, low=1)
        in_channels = as_int(in_channels, "in_channels", where=where, low=1)
        model_channels = as_int(model_channels, "model_channels", where=where, low=1)
        out_channels = as_int(out_channels, "out_channels", where=where, low=1)
        num_res_blocks = as_int(num_res_blocks, "num_res_blocks", where=where, low=1)
        num_heads = as_int(num_heads, "num_heads", where=where, low=1)
        num_head_channels = as_int(num_head_channels, "num_head_channels", where=where, low=-1)
        num_heads_upsample = as_int(num_heads_upsample, "num_heads_upsample", where=where,
                                    low=-1)
        if num_head_channels == 0 or num_heads_upsample == 0:
            raise ValueError(f"{where} options 'num_head_channels' and 'num_heads_upsample' "
                             "must be -1 or >= 1")
        if num_classes is not None:
            num_classes = as_int(num_classes, "num_classes", where=where, low=1)
        dropout = as_float(dropout, "dropout", where=where, low=0.0)
        channel_mult = tuple(as_float(m, "channel_mult", where=where, positive=True)
                             for m in channel_mult)
        if not channel_mult:
            raise ValueError(f"{where} option 'channel_mult' must not be empty")
        channel_mult = tuple(int(m) if m == int(m) else m for m in channel_mult)
        attention_resolutions = tuple(as_int(r, "attention_resolutions", where=where, low=1)
                                      for r in attention_resolutions)
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_classes = num_classes
        self.use_fp16 = use_fp16
        attention_ds = set(attention_resolutions)
        emb_dim = 4 * model_channels

        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_dim)

        def res(ch_in, ch_out, **kw):
            return _ResBlock(ch_in, emb_dim, dropout, out_channels=ch_out,
                             use_scale_shift_norm=use_scale_shift_norm, **kw)

        def attn(ch, heads):
            return _AttentionBlock(ch, heads, num_head_channels, use_new_attention_order)

        ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList(
            [_EmbSequential(nn.Conv2d(in_channels, ch, 3, padding=1))]
        )
        skip_chans = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [res(ch, int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attention_ds:
                    layers.append(attn(ch, num_heads))
                self.input_blocks.append(_EmbSequential(*layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                down = (res(ch, ch, down=True) if resblock_updown
                        else _Downsample(ch, conv_resample, ch))
                self.input_blocks.append(_EmbSequential(down))
                skip_chans.append(ch)
                ds *= 2

        self.middle_block = _EmbSequential(res(ch, ch), attn(ch, num_heads), res(ch, ch))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), int(model_channels * mult))]
                ch = int(model_channels * mult)
                if ds in attention_ds:
                    layers.append(attn(ch, num_heads_upsample))
                if level and i == num_res_blocks:
                    layers.append(res(ch, ch, up=True) if resblock_updown
                                  else _Upsample(ch, conv_resample, ch))
                    ds //= 2
                self.output_blocks.append(_EmbSequential(*layers))

        self.out = nn.Sequential(
            _GroupNorm32(ch), nn.SiLU(), _zero(nn.Conv2d(ch, out_channels, 3, padding=1))
        )

    @property
    def inner_dtype(self) -> torch.dtype:
        """dtype of the body's convolutions (float16 after :meth:`convert_to_fp16`)."""
        return self.input_blocks[0][0].weight.dtype

    def convert_to_fp16(self) -> None:
        """Cast the convolutions of the body to float16, as guided-diffusion does.

        Only ``Conv1d``/``Conv2d`` weights of ``input_blocks``, ``middle_block`` and
        ``output_blocks`` change; linear layers, group norms, ``time_embed`` and ``out`` stay
        float32.
        """
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            for m in part.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                    m.half()

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor:
        """Network output for images ``x`` (B, C, H, W) at DDPM steps ``timesteps`` (B,)."""
        if (y is not None) != (self.num_classes is not None):
            raise ValueError("y (class labels) must be given exactly when the model is "
                             f"class-conditional (num_classes={self.num_classes})")
        emb_dtype = torch.float64 if self.time_embed[0].weight.dtype == torch.float64 \
            else torch.float32
        emb = self.time_embed(
            timestep_embedding(timesteps, self.model_channels, dtype=emb_dtype)
            .to(self.time_embed[0].weight.dtype)
        )
        if y is not None:
            emb = emb + self.label_emb(y)
        h = x.to(self.inner_dtype)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.to(x.dtype))


def create_model_kwargs(config: Any) -> dict:
    """Resolve guided-diffusion ``create_model`` arguments into :class:`ADMUNet` arguments.

    Parameters
    ----------
    config : dict or namespace
        Either ``create_model`` keyword arguments (``num_channels``, ``channel_mult`` as a
        comma string or ``""`` for the size default, ``attention_resolutions`` as resolutions in
        a comma string or an int, ``learn_sigma``, ``class_cond`` ...), or resolved
        ``UNetModel`` arguments (``model_channels`` ...), or a dict holding one of these under
        ``"create_model_kwargs"`` / ``"resolved_UNetModel_kwargs"`` (the conformance JSON).

    Returns
    -------
    dict
        Keyword arguments of :class:`ADMUNet`.

    Examples
    --------
    >>> from invdiff_models.adm import create_model_kwargs
    >>> kw = create_model_kwargs({"image_size": 256, "num_channels": 128, "num_res_blocks": 1,
    ...                           "channel_mult": "", "attention_resolutions": 16,
    ...                           "learn_sigma": True})
    >>> kw["channel_mult"], kw["attention_resolutions"], kw["out_channels"]
    ((1, 1, 2, 2, 4, 4), (16,), 6)
    """
    cfg = as_dict(config)
    if "create_model_kwargs" in cfg:
        cfg = cfg["create_model_kwargs"]
    elif "resolved_UNetModel_kwargs" in cfg:
        cfg = cfg["resolved_UNetModel_kwargs"]
    if "model_channels" in cfg:  # already UNetModel arguments
        kw = dict(cfg)
        kw["channel_mult"] = tuple(kw.get("channel_mult", (1, 2, 4, 8)))
        kw["attention_resolutions"] = tuple(kw.get("attention_resolutions", ()))
        unknown = sorted(set(kw) - set(inspect.signature(ADMUNet).parameters))
        if unknown:
            raise ValueError(f"unknown UNetModel arguments {unknown}")
        return kw
    for key in ("image_size", "num_channels", "num_res_blocks"):
        if key not in cfg:
            raise ValueError(f"ADM config is missing '{key}'; received keys {sorted(cfg)}")
    where = "ADM config"
    image_size = as_int(cfg["image_size"], "image_size", where=where, low=1)
    mult = cfg.get("channel_mult", "")
    if mult in ("", None):
        if image_size not in _DEFAULT_CHANNEL_MULT:
            raise ValueError(
                f"channel_mult='' has no default for image_size={image_size}; expected one of "
                f"{sorted(_DEFAULT_CHANNEL_MULT)} or an explicit channel_mult"
            )
        mult = _DEFAULT_CHANNEL_MULT[image_size]
    elif isinstance(mult, str):
        mult = tuple(as_float(m, "channel_mult", where=where, positive=True)
                     for m in mult.split(","))
    else:
        mult = tuple(mult)
    res = cfg.get("attention_resolutions", "16")
    if isinstance(res, (int, float)):
        res = [res]
    elif isinstance(res, str):
        res = [r for r in res.split(",") if r.strip()]
    res = [as_int(r, "attention_resolutions", where=where, low=1) for r in res]
    attention_ds = tuple(image_size // r for r in res)
    learn_sigma = bool(cfg.get("learn_sigma", False))
    return dict(
        image_size=image_size,
        in_channels=3,
        model_channels=as_int(cfg["num_channels"], "num_channels", where=where, low=1),
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=as_int(cfg["num_res_blocks"], "num_res_blocks", where=where, low=1),
        attention_resolutions=attention_ds,
        dropout=as_float(cfg.get("dropout", 0.0), "dropout", where=where, low=0.0),
        channel_mult=mult,
        num_classes=NUM_CLASSES if cfg.get("class_cond", False) else None,
        use_checkpoint=bool(cfg.get("use_checkpoint", False)),
        use_fp16=bool(cfg.get("use_fp16", False)),
        num_heads=as_int(cfg.get("num_heads", 1), "num_heads", where=where, low=1),
        num_head_channels=as_int(cfg.get("num_head_channels", -1), "num_head_channels",
                                 where=where, low=-1),
        num_heads_upsample=as_int(cfg.get("num_heads_upsample", -1), "num_heads_upsample",
                                  where=where, low=-1),
        use_scale_shift_norm=bool(cfg.get("use_scale_shift_norm", False)),
        resblock_updown=bool(cfg.get("resblock_updown", False)),
        use_new_attention_order=bool(cfg.get("use_new_attention_order", False)),
    )


def build(config: Any) -> ADMUNet:
    """Build the ADM UNet from a guided-diffusion configuration.

    Parameters
    ----------
    config : dict or namespace
        See :func:`create_model_kwargs` (e.g. DPS's ``configs/model_config.yaml`` values or
        the dict in ``conformance/adm_small_config.json``).

    Returns
    -------
    ADMUNet
        Randomly initialised network (output convs at zero, as in the original) whose
        ``state_dict`` keys and shapes equal those of guided-diffusion's ``UNetModel``.
        ``use_fp16`` is recorded but the weights stay float32: call ``convert_to_fp16()``.

    Examples
    --------
    >>> from invdiff_models import adm
    >>> net = adm.build({"image_size": 32, "num_channels": 32, "num_res_blocks": 1,
    ...                  "channel_mult": "1,2,2", "learn_sigma": True,
    ...                  "attention_resolutions": "16", "num_head_channels": 16,
    ...                  "use_scale_shift_norm": True, "resblock_updown": True})
    >>> sum(p.numel() for p in net.parameters())
    1371974
    """
    return ADMUNet(**create_model_kwargs(config))
