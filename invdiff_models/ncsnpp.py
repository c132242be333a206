"""NCSN++ (Song et al. 2021, score-SDE) as used by RectifiedFlow (Liu et al. 2023).

Parameter names follow ``ImageGeneration/models/ncsnpp.py`` of RectifiedFlow (a copy of
score-SDE's PyTorch ``NCSNpp``): a flat ``all_modules`` list whose indices identify the layers,
so its checkpoints load with ``load_state_dict(strict=True)`` once the ``module.`` prefix of
``nn.DataParallel`` is removed.

Implemented subset (what the released RectifiedFlow checkpoints use): ``resblock_type`` 'biggan'
(with or without FIR resampling), ``progressive`` 'none' / 'output_skip', ``progressive_input``
'none' / 'input_skip', ``progressive_combine`` 'sum' / 'cat', ``embedding_type`` 'fourier' /
'positional', DDPM attention, ``scale_by_sigma``, centered or [0, 1] data. Other options raise
``NotImplementedError``.

Forward convention with RectifiedFlow's configs: ``net(x, 999 * s)`` where ``s`` in
``[1e-3, 1]`` is *their* time (``s = 0`` noise, ``s = 1`` data) and the output is the velocity
``d x / d s``; with ``embedding_type='fourier'`` the embedding sees ``log(999 s)`` and with
``scale_by_sigma=True`` the output is divided by ``999 s``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._config import as_dict, as_float, as_int, require, section

__all__ = ["NCSNpp", "build", "upfirdn2d"]


# ---------------------------------------------------------------------------------------------
# initialisers (DDPM / score-SDE variance scaling; only matter for fresh networks)

def _variance_scaling_(w: torch.Tensor, scale: float) -> torch.Tensor:
    """Uniform fan-avg variance scaling, the DDPM default initialiser (scale 0 -> 1e-10)."""
    scale = 1e-10 if scale == 0 else scale
    receptive = w[0, 0].numel() if w.ndim > 2 else 1
    fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
    bound = math.sqrt(3.0 * scale / ((fan_in + fan_out) / 2.0))
    with torch.no_grad():
        return w.uniform_(-bound, bound)


def _conv(c_in: int, c_out: int, k: int, init_scale: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
    _variance_scaling_(conv.weight, init_scale)
    nn.init.zeros_(conv.bias)
    return conv


def _dense(c_in: int, c_out: int) -> nn.Linear:
    lin = nn.Linear(c_in, c_out)
    _variance_scaling_(lin.weight, 1.0)
    nn.init.zeros_(lin.bias)
    return lin


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(channels // 4, 32), num_channels=channels, eps=1e-6)


# ---------------------------------------------------------------------------------------------
# FIR resampling (StyleGAN2's upfirdn2d, depthwise)

def _fir_kernel(taps, gain: float, dtype, device) -> torch.Tensor:
    k = np.asarray(taps, dtype=np.float64)
    k = np.outer(k, k) if k.ndim == 1 else k
    k = k / k.sum() * gain
    # The original builds the kernel in float32; keep that for float32 networks.
    dtype = torch.float64 if dtype == torch.float64 else torch.float32
    return torch.as_tensor(k.astype(np.float32), device=device).to(dtype)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (per channel), downsample.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(B, C, H, W)``.
    kernel : torch.Tensor
        2-D FIR kernel ``(kh, kw)``; applied as a true convolution (flipped).
    up, down : int
        Integer up/down-sampling factors.
    pad : (int, int)
        Padding before and after, on both axes, applied after upsampling.

    Returns
    -------
    torch.Tensor
        Shape ``(B, C, (H up + p0 + p1 - kh) // down + 1, ...)``.

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.ncsnpp import upfirdn2d
    >>> x = torch.ones(1, 1, 4, 4)
    >>> upfirdn2d(x, torch.full((2, 2), 0.25), down=2).shape
    torch.Size([1, 1, 2, 2])
    """
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if min(p0, p1) < 0:
        x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


def _upsample_fir(x: torch.Tensor, taps, factor: int = 2) -> torch.Tensor:
    k = _fir_kernel(taps, factor ** 2, x.dtype, x.device)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def _downsample_fir(x: torch.Tensor, taps, factor: int = 2) -> torch.Tensor:
    k = _fir_kernel(taps, 1.0, x.dtype, x.device)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def _upsample_naive(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def _downsample_naive(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


class _PyramidResample(nn.Module):
    """Parameter-free up/down-sampling of the input/output pyramids (FIR or nearest/avg)."""

    def __init__(self, up: bool, fir: bool, fir_kernel):
        super().__init__()
        self.up, self.fir, self.fir_kernel = up, fir, tuple(fir_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fir:
            return (_upsample_fir if self.up else _downsample_fir)(x, self.fir_kernel)
        if self.up:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.avg_pool2d(x, 2, stride=2)


# ---------------------------------------------------------------------------------------------
# layers (names follow layerspp.py)

class _GaussianFourierProjection(nn.Module):
    """``[sin(2 pi W s), cos(2 pi W s)]`` with fixed random ``W ~ N(0, scale^2)``."""

    def __init__(self, embedding_size: int, scale: float):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        # Multiply in the original's order: phases reach ~1e3 rad, so rounding order shows.
        proj = s[:, None] * self.W[None, :] * 2 * np.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def _positional_embedding(t: torch.Tensor, dim: int, max_positions: int = 10000,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """score-SDE's sinusoidal embedding ``[sin, cos]`` with ``half - 1`` in the exponent."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=dtype, device=t.device)
                      * -(math.log(max_positions) / (half - 1)))
    args = t.to(dtype)[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class _NIN(nn.Module):
    """1x1 'network in network' layer; ``W`` is (in, out), the transpose of ``nn.Linear``."""

    def __init__(self, c_in: int, c_out: int, init_scale: float = 0.1):
        super().__init__()
        self.W = nn.Parameter(_variance_scaling_(torch.empty(c_out, c_in), init_scale).T.clone())
        self.b = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x.permute(0, 2, 3, 1), self.W) + self.b
        return y.permute(0, 3, 1, 2)


class _AttnBlockpp(nn.Module):
    """Single-head DDPM self-attention with NIN projections and optional 1/sqrt(2) skip."""

    def __init__(self, channels: int, skip_rescale: bool, init_scale: float):
        super().__init__()
        self.GroupNorm_0 = _group_norm(channels)
        self.NIN_0 = _NIN(channels, channels)
        self.NIN_1 = _NIN(channels, channels)
        self.NIN_2 = _NIN(channels, channels)
        self.NIN_3 = _NIN(channels, channels, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        h = self.GroupNorm_0(x)
        q = self.NIN_0(h).reshape(b, c, hh * ww)
        k = self.NIN_1(h).reshape(b, c, hh * ww)
        v = self.NIN_2(h).reshape(b, c, hh * ww)
        w = torch.bmm(q.transpose(1, 2), k) * (int(c) ** (-0.5))
        w = torch.softmax(w, dim=-1)
        h = torch.bmm(v, w.transpose(1, 2)).reshape(b, c, hh, ww)
        h = self.NIN_3(h)
        return (x + h) / np.sqrt(2.0) if self.skip_rescale else x + h


class _ResnetBlockBigGAN(nn.Module):
    """BigGAN-style residual block; resampling (FIR or naive) happens inside the block."""

    def __init__(self, act: nn.Module, in_ch: int, out_ch: int | None, temb_dim: int,
                 up: bool, down: bool, dropout: float, fir: bool, fir_kernel,
                 skip_rescale: bool, init_scale: float):
        super().__init__()
        out_ch = out_ch or in_ch
        self.GroupNorm_0 = _group_norm(in_ch)
        self.Conv_0 = _conv(in_ch, out_ch, 3)
        self.Dense_0 = _dense(temb_dim, out_ch)
        self.GroupNorm_1 = _group_norm(out_ch)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = _conv(out_ch, out_ch, 3, init_scale=init_scale)
        self.learned_skip = in_ch != out_ch or up or down
        if self.learned_skip:
            self.Conv_2 = _conv(in_ch, out_ch, 1)
        self.act, self.up, self.down = act, up, down
        self.fir, self.fir_kernel, self.skip_rescale = fir, tuple(fir_kernel), skip_rescale

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return _upsample_fir(x, self.fir_kernel) if self.fir else _upsample_naive(x)
        if self.down:
            return _downsample_fir(x, self.fir_kernel) if self.fir else _downsample_naive(x)
        return x

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        h = self.act(self.GroupNorm_0(x))
        h, x = self._resample(h), self._resample(x)
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))
        if self.learned_skip:
            x = self.Conv_2(x)
        return (x + h) / np.sqrt(2.0) if self.skip_rescale else x + h


class _Combine(nn.Module):
    """1x1 conv of the input pyramid, then summed with (or concatenated to) the features."""

    def __init__(self, dim1: int, dim2: int, method: str):
        super().__init__()
        self.Conv_0 = _conv(dim1, dim2, 1)
        self.method = method

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.Conv_0(x)
        return torch.cat([h, y], dim=1) if self.method == "cat" else h + y


# ---------------------------------------------------------------------------------------------

_ACTS = {"elu": nn.ELU, "relu": nn.ReLU, "swish": nn.SiLU,
         "lrelu": lambda: nn.LeakyReLU(negative_slope=0.2)}


class NCSNpp(nn.Module):
    """NCSN++ with score-SDE / RectifiedFlow parameter names (``all_modules.<i>``).

    Parameters
    ----------
    config : dict
        Nested dict with ``model`` and ``data`` sections as in score-SDE configs (see
        :func:`build`, which also accepts ``ConfigDict`` and the conformance JSON).

    Notes
    -----
    Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole, "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021; trained as a velocity field by Liu, Gong &
    Liu, "Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow",
    ICLR 2023. The layer order inside ``all_modules`` is the original's, so the EMA
    ``shadow_params`` list (in ``parameters()`` order) applies index by index.

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.ncsnpp import NCSNpp
    >>> cfg = {"model": {"nf": 16, "ch_mult": [1, 2], "num_res_blocks": 1,
    ...                  "attn_resolutions": [8], "embedding_type": "fourier"},
    ...        "data": {"image_size": 16, "num_channels": 3, "centered": True}}
    >>> net = NCSNpp(cfg).eval()
    >>> net(torch.zeros(2, 3, 16, 16), torch.tensor([300.0, 900.0])).shape
    torch.Size([2, 3, 16, 16])
    """

    def __init__(self, config: dict):
        super().__init__()
        m, d = config["model"], config["data"]
        get = m.get
        wm, wd = "NCSN++ config model", "NCSN++ config data"
        self.nf = nf = as_int(require(m, "nf", where=wm), "nf", where=wm, low=1)
        ch_mult = [as_int(v, "ch_mult", where=wm, low=1) for v in get("ch_mult", (1, 2, 2, 2))]
        if not ch_mult:
            raise ValueError(f"{wm} option 'ch_mult' must not be empty")
        self.num_res_blocks = nrb = as_int(get("num_res_blocks", 4), "num_res_blocks",
                                           where=wm, low=1)
        self.attn_resolutions = attn = tuple(as_int(r, "attn_resolutions", where=wm, low=1)
                                             for r in get("attn_resolutions", (16,)))
        image_size = as_int(require(d, "image_size", where=wd), "image_size", where=wd, low=1)
        channels = as_int(d.get("num_channels", 3), "num_channels", where=wd, low=1)
        self.num_channels = channels
        self.centered = bool(d.get("centered", False))
        self.num_resolutions = n_res = len(ch_mult)
        resolutions = [image_size // 2 ** i for i in range(n_res)]
        self.embedding_type = emb_type = str(get("embedding_type", "fourier")).lower()
        self.conditional = bool(get("conditional", True))
        self.scale_by_sigma = bool(get("scale_by_sigma", True))
        self.progressive = str(get("progressive", "none")).lower()
        self.progressive_input = str(get("progressive_input", "none")).lower()
        combine = str(get("progressive_combine", "sum")).lower()
        fir, fir_kernel = bool(get("fir", False)), tuple(get("fir_kernel", (1, 3, 3, 1)))
        skip_rescale = bool(get("skip_rescale", True))
        init_scale = as_float(get("init_scale", 0.0), "init_scale", where=wm, low=0.0)
        dropout = as_float(get("dropout", 0.0), "dropout", where=wm, low=0.0)
        self._check_supported(m, emb_type, combine)
        name = str(get("nonlinearity", "swish")).lower()
        if name not in _ACTS:
            raise ValueError(f"model.nonlinearity must be one of {sorted(_ACTS)}; "
                             f"received {name!r}")
        self.act = act = _ACTS[name]()

        sig = np.exp(np.linspace(
            np.log(as_float(get("sigma_max", 50.0), "sigma_max", where=wm, positive=True)),
            np.log(as_float(get("sigma_min", 0.01), "sigma_min", where=wm, positive=True)),
            as_int(get("num_scales", 1000), "num_scales", where=wm, low=1)))
        self.register_buffer("sigmas", torch.tensor(sig))  # float64, as the original

        modules: list[nn.Module] = []
        if emb_type == "fourier":
            modules.append(_GaussianFourierProjection(
                nf, as_float(get("fourier_scale", 16.0), "fourier_scale", where=wm)))
            embed_dim = 2 * nf
        else:
            embed_dim = nf
        if self.conditional:
            modules += [_dense(embed_dim, 4 * nf), _dense(4 * nf, 4 * nf)]

        def resnet(in_ch, out_ch=None, up=False, down=False):
            return _ResnetBlockBigGAN(act, in_ch, out_ch, 4 * nf, up, down, dropout, fir,
                                      fir_kernel, skip_rescale, init_scale)

        def attn_block(ch):
            return _AttnBlockpp(ch, skip_rescale, init_scale)

        self.pyramid_upsample = _PyramidResample(True, fir, fir_kernel)
        self.pyramid_downsample = _PyramidResample(False, fir, fir_kernel)

        modules.append(_conv(channels, nf, 3))
        hs_c = [nf]
        in_ch = nf
        for level in range(n_res):
            for _ in range(nrb):
                out_ch = nf * ch_mult[level]
                modules.append(resnet(in_ch, out_ch))
                in_ch = out_ch
                if resolutions[level] in attn:
                    modules.append(attn_block(in_ch))
                hs_c.append(in_ch)
            if level != n_res - 1:
                modules.append(resnet(in_ch, down=True))
                if self.progressive_input == "input_skip":
                    modules.append(_Combine(channels, in_ch, combine))
                    if combine == "cat":
                        in_ch *= 2
                hs_c.append(in_ch)

        in_ch = hs_c[-1]
        modules += [resnet(in_ch), attn_block(in_ch), resnet(in_ch)]

        for level in reversed(range(n_res)):
            for _ in range(nrb + 1):
                out_ch = nf * ch_mult[level]
                modules.append(resnet(in_ch + hs_c.pop(), out_ch))
                in_ch = out_ch
            if resolutions[level] in attn:
                modules.append(attn_block(in_ch))
            if self.progressive == "output_skip":
                modules += [_group_norm(in_ch), _conv(in_ch, channels, 3, init_scale)]
            if level != 0:
                modules.append(resnet(in_ch, up=True))
        if hs_c:
            raise AssertionError("internal error: unused skip connections")
        if self.progressive != "output_skip":
            modules += [_group_norm(in_ch), _conv(in_ch, channels, 3, init_scale)]
        self.all_modules = nn.ModuleList(modules)

    @staticmethod
    def _check_supported(m: dict, emb_type: str, combine: str) -> None:
        checks = {
            "resblock_type": (str(m.get("resblock_type", "biggan")).lower(), {"biggan"}),
            "progressive": (str(m.get("progressive", "none")).lower(), {"none", "output_skip"}),
            "progressive_input": (str(m.get("progressive_input", "none")).lower(),
                                  {"none", "input_skip"}),
            "progressive_combine": (combine, {"sum", "cat"}),
            "embedding_type": (emb_type, {"fourier", "positional"}),
            "attention_type": (str(m.get("attention_type", "ddpm")).lower(), {"ddpm"}),
        }
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise NotImplementedError(
                    f"model.{key}={value!r} is not implemented; supported: {sorted(allowed)} "
                    "(the options of the released RectifiedFlow checkpoints)"
                )
        if m.get("name", "ncsnpp") != "ncsnpp":
            raise ValueError(f"model.name must be 'ncsnpp'; received {m.get('name')!r}")

    def _embed(self, time_cond: torch.Tensor) -> torch.Tensor | None:
        mods = self.all_modules
        i = 0
        if self.embedding_type == "fourier":
            temb = mods[0](torch.log(time_cond))
            i = 1
        else:
            dtype = torch.float64 if mods[0].weight.dtype == torch.float64 else torch.float32
            temb = _positional_embedding(time_cond, self.nf, dtype=dtype)
        if not self.conditional:
            return None
        return mods[i + 1](self.act(mods[i](temb.to(mods[i].weight.dtype))))

    def forward(self, x: torch.Tensor, time_cond: torch.Tensor) -> torch.Tensor:
        """Network output at noise level / time ``time_cond`` (shape (B,))."""
        temb = self._embed(time_cond)
        it = iter(self.all_modules[(self.embedding_type == "fourier") + 2 * self.conditional:])
        if not self.centered:
            x = 2 * x - 1.0
        pyramid_in = x
        hs = [next(it)(x)]
        for level in range(self.num_resolutions):
            for _ in range(self.num_res_blocks):
                h = next(it)(hs[-1], temb)
                if h.shape[-1] in self.attn_resolutions:
                    h = next(it)(h)
                hs.append(h)
            if level != self.num_resolutions - 1:
                h = next(it)(hs[-1], temb)
                if self.progressive_input == "input_skip":
                    pyramid_in = self.pyramid_downsample(pyramid_in)
                    h = next(it)(pyramid_in, h)
                hs.append(h)

        h = hs[-1]
        h = next(it)(h, temb)
        h = next(it)(h)
        h = next(it)(h, temb)

        pyramid = None
        for level in reversed(range(self.num_resolutions)):
            for _ in range(self.num_res_blocks + 1):
                h = next(it)(torch.cat([h, hs.pop()], dim=1), temb)
            if h.shape[-1] in self.attn_resolutions:
                h = next(it)(h)
            if self.progressive == "output_skip":
                norm, conv = next(it), next(it)
                p = conv(self.act(norm(h)))
                pyramid = p if pyramid is None else self.pyramid_upsample(pyramid) + p
            if level != 0:
                h = next(it)(h, temb)

        if self.progressive == "output_skip":
            h = pyramid
        else:
            norm, conv = next(it), next(it)
            h = conv(self.act(norm(h)))
        if self.scale_by_sigma:
            if self.embedding_type == "fourier":
                used = time_cond
            else:
                used = self.sigmas[time_cond.long()]
            h = h / used.to(h.dtype).reshape(x.shape[0], *([1] * (x.ndim - 1)))
        return h


def _sections(config: Any) -> dict:
    cfg = as_dict(config)
    if "config" in cfg and isinstance(cfg["config"], dict):  # conformance JSON / manifest
        cfg = cfg["config"]
    return {"model": section(cfg, "model", arch="NCSN++"),
            "data": section(cfg, "data", arch="NCSN++"),
            "training": cfg.get("training", {})}


def build(config: Any) -> NCSNpp:
    """Build NCSN++ from a score-SDE / RectifiedFlow configuration.

    Parameters
    ----------
    config : dict, ConfigDict or namespace
        Needs the ``model`` and ``data`` sections of e.g. RectifiedFlow's
        ``configs/rectified_flow/celeba_hq_pytorch_rf_gaussian.py``; ``{"config": ...}``
        (the conformance JSON and manifest layout) is accepted too.

    Returns
    -------
    NCSNpp
        Freshly initialised network (DDPM variance-scaling init) whose ``state_dict`` equals
        the original's without the ``module.`` prefix.

    Examples
    --------
    >>> from invdiff_models import ncsnpp
    >>> cfg = {"model": {"nf": 16, "ch_mult": [1, 2, 2], "num_res_blocks": 1,
    ...                  "attn_resolutions": [16], "fir": True, "progressive": "output_skip",
    ...                  "progressive_input": "input_skip", "embedding_type": "fourier",
    ...                  "num_scales": 2000, "sigma_max": 378},
    ...        "data": {"image_size": 32, "num_channels": 3, "centered": True}}
    >>> net = ncsnpp.build(cfg)
    >>> sum(p.numel() for p in net.parameters())
    320793
    """
    return NCSNpp(_sections(config))
