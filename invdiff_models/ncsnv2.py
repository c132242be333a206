"""NCSNv2 (Song & Ermon 2020), the score network of QCS-SGM and QCS-SGM+.

Parameter names and the forward pass follow ``models/ncsnv2.py`` (class ``NCSNv2``) of the
QCS-SGM code, itself taken from ermongroup/ncsnv2, so its checkpoints load with
``load_state_dict(strict=True)`` once the ``module.`` prefix of ``nn.DataParallel`` is removed.

Forward convention of the original: ``net(x, y)`` with ``x`` in ``[0, 1]`` (the network maps
it to ``2x - 1`` itself) and ``y`` a LongTensor of **indices** into the buffer ``sigmas``; the
output is the score, ``body(2x - 1) / sigmas[y]``. The body does not depend on the noise level
(InstanceNorm++ here is unconditional), so :meth:`NCSNv2.score` evaluates it at any sigma.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._config import as_dict, as_float, as_int, require, section

__all__ = ["NCSNv2", "build", "get_sigmas"]


def get_sigmas(sigma_begin: float, sigma_end: float, num_classes: int,
               sigma_dist: str = "geometric") -> torch.Tensor:
    """The noise levels of NCSNv2, descending, float32 (computed in float64 first).

    Parameters
    ----------
    sigma_begin, sigma_end : float
        Largest and smallest noise level.
    num_classes : int
        Number of levels ``L``.
    sigma_dist : {"geometric", "uniform"}
        Spacing of the levels.

    Returns
    -------
    torch.Tensor
        Shape ``(L,)``, float32, as the original buffer.

    Examples
    --------
    >>> from invdiff_models.ncsnv2 import get_sigmas
    >>> s = get_sigmas(50.0, 0.01, 232)
    >>> float(s[0]), round(float(s[-1]), 6), s.dtype
    (50.0, 0.01, torch.float32)
    """
    if sigma_dist == "geometric":
        s = np.exp(np.linspace(np.log(sigma_begin), np.log(sigma_end), num_classes))
    elif sigma_dist == "uniform":
        s = np.linspace(sigma_begin, sigma_end, num_classes)
    else:
        raise ValueError(f"sigma_dist must be 'geometric' or 'uniform'; received {sigma_dist!r}")
    return torch.from_numpy(s).float()


def _activation(name: str) -> nn.Module:
    acts = {"elu": nn.ELU, "relu": nn.ReLU, "swish": nn.SiLU,
            "lrelu": lambda: nn.LeakyReLU(negative_slope=0.2)}
    if name.lower() not in acts:
        raise ValueError(f"model.nonlinearity must be one of {sorted(acts)}; received {name!r}")
    return acts[name.lower()]()


class _InstanceNormPlus(nn.Module):
    """InstanceNorm++: instance norm that keeps the (normalised) channel means.

    ``out = gamma * (IN(x) + alpha * mu~) + beta`` where ``mu~`` are the per-channel spatial
    means standardised across channels with the *unbiased* variance (``torch.var`` default).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(channels).normal_(1.0, 0.02))
        self.gamma = nn.Parameter(torch.empty(channels).normal_(1.0, 0.02))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.mean(dim=(2, 3))
        mu = means.mean(dim=-1, keepdim=True)
        var = means.var(dim=-1, keepdim=True)
        means = (means - mu) / torch.sqrt(var + 1e-5)
        h = F.instance_norm(x, eps=1e-5)
        h = h + means[..., None, None] * self.alpha[..., None, None]
        return self.gamma[None, :, None, None] * h + self.beta[None, :, None, None]


def _conv3x3(c_in: int, c_out: int, bias: bool = True, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=bias)


class _ConvMeanPool(nn.Module):
    """Conv (key ``conv``), then the mean of the four 2x2 polyphase components."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        # Same summation order as the original (keeps results bitwise comparable).
        return (h[:, :, ::2, ::2] + h[:, :, 1::2, ::2] + h[:, :, ::2, 1::2]
                + h[:, :, 1::2, 1::2]) / 4.0


class _ResidualBlock(nn.Module):
    """Pre-activation residual block; ``resample='down'`` halves the size unless dilated.

    As in the original, a dilated ``'down'`` block does **not** downsample: it takes the
    dilated-conv branch (and its shortcut is a dilated 3x3 conv).
    """

    def __init__(self, c_in: int, c_out: int, act: nn.Module, resample: str | None = None,
                 dilation: int = 1):
        super().__init__()
        self.act = act
        self.normalize1 = _InstanceNormPlus(c_in)
        if resample == "down":
            if dilation > 1:
                self.conv1 = _conv3x3(c_in, c_in, dilation=dilation)
                self.normalize2 = _InstanceNormPlus(c_in)
                self.conv2 = _conv3x3(c_in, c_out, dilation=dilation)
                self.shortcut = _conv3x3(c_in, c_out, dilation=dilation)
            else:
                self.conv1 = _conv3x3(c_in, c_in)
                self.normalize2 = _InstanceNormPlus(c_in)
                self.conv2 = _ConvMeanPool(c_in, c_out, 3)
                self.shortcut = _ConvMeanPool(c_in, c_out, 1)
        elif resample is None:
            self.conv1 = _conv3x3(c_in, c_out, dilation=dilation)
            self.normalize2 = _InstanceNormPlus(c_out)
            self.conv2 = _conv3x3(c_out, c_out, dilation=dilation)
            if c_in != c_out:
                self.shortcut = (_conv3x3(c_in, c_out, dilation=dilation) if dilation > 1
                                 else nn.Conv2d(c_in, c_out, 1))
        else:
            raise ValueError(f"resample must be None or 'down'; received {resample!r}")
        self.has_shortcut = hasattr(self, "shortcut")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.normalize1(x)))
        h = self.conv2(self.act(self.normalize2(h)))
        return (self.shortcut(x) if self.has_shortcut else x) + h


class _RCUBlock(nn.Module):
    """Residual conv units: ``n_blocks`` residual stacks of ``n_stages`` (act, conv) pairs."""

    def __init__(self, channels: int, n_blocks: int, n_stages: int, act: nn.Module):
        super().__init__()
        self.act, self.n_blocks, self.n_stages = act, n_blocks, n_stages
        for i in range(n_blocks):
            for j in range(n_stages):
                setattr(self, f"{i + 1}_{j + 1}_conv", _conv3x3(channels, channels, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n_blocks):
            residual = x
            for j in range(self.n_stages):
                x = getattr(self, f"{i + 1}_{j + 1}_conv")(self.act(x))
            x = x + residual
        return x


class _MSFBlock(nn.Module):
    """Multi-resolution fusion: conv each input, resize bilinearly (corners aligned), sum."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.channels = channels
        self.convs = nn.ModuleList(_conv3x3(c, channels) for c in in_channels)

    def forward(self, xs: list[torch.Tensor], shape) -> torch.Tensor:
        total = None
        for conv, x in zip(self.convs, xs, strict=True):
            h = F.interpolate(conv(x), size=tuple(shape), mode="bilinear", align_corners=True)
            # The original starts from zeros; 0 + h == h exactly, so start from the first term.
            total = h if total is None else total + h
        return total


class _CRPBlock(nn.Module):
    """Chained residual pooling: repeated (5x5 max-pool, conv) paths summed onto the input."""

    def __init__(self, channels: int, n_stages: int, act: nn.Module):
        super().__init__()
        self.act = act
        self.convs = nn.ModuleList(_conv3x3(channels, channels, bias=False)
                                   for _ in range(n_stages))
        self.pool = nn.MaxPool2d(kernel_size=5, stride=1, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        path = x
        for conv in self.convs:
            path = conv(self.pool(path))
            x = path + x
        return x


class _RefineBlock(nn.Module):
    """RefineNet block: adapt each input (RCU), fuse (MSF), pool (CRP), output RCU."""

    def __init__(self, in_channels: list[int], channels: int, act: nn.Module,
                 start: bool = False, end: bool = False):
        super().__init__()
        self.adapt_convs = nn.ModuleList(_RCUBlock(c, 2, 2, act) for c in in_channels)
        self.output_convs = _RCUBlock(channels, 3 if end else 1, 2, act)
        if not start:
            self.msf = _MSFBlock(in_channels, channels)
        self.crp = _CRPBlock(channels, 2, act)

    def forward(self, xs: list[torch.Tensor], shape) -> torch.Tensor:
        hs = [adapt(x) for adapt, x in zip(self.adapt_convs, xs, strict=True)]
        h = self.msf(hs, shape) if len(hs) > 1 else hs[0]
        return self.output_convs(self.crp(h))


class NCSNv2(nn.Module):
    """NCSNv2 score network (RefineNet with InstanceNorm++), original parameter names.

    Parameters
    ----------
    channels : int
        Image channels (``data.channels``).
    ngf : int
        Base width (``model.ngf``).
    sigmas : torch.Tensor
        The noise levels, stored as the buffer ``sigmas`` (see :func:`get_sigmas`).
    nonlinearity : str
        ``model.nonlinearity`` ("elu" in all released configs).
    rescaled : bool
        ``data.rescaled or data.logit_transform``: when False the input in ``[0, 1]`` is
        mapped to ``2x - 1`` first.

    Notes
    -----
    Song & Ermon, "Improved Techniques for Training Score-Based Generative Models", NeurIPS
    2020; used unchanged by Meng & Kabashima's QCS-SGM (ICLR 2023) and QCS-SGM+ (AAAI 2024).
    Only ``res2`` halves the resolution; ``res3``/``res4`` are dilated (2, 4).

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.ncsnv2 import NCSNv2, get_sigmas
    >>> net = NCSNv2(1, 8, get_sigmas(50.0, 0.01, 10)).eval()
    >>> net(torch.rand(2, 1, 28, 28), torch.tensor([0, 9])).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, channels: int, ngf: int, sigmas: torch.Tensor,
                 nonlinearity: str = "elu", rescaled: bool = False):
        super().__init__()
        self.rescaled = rescaled
        self.act = act = _activation(nonlinearity)
        self.register_buffer("sigmas", torch.as_tensor(sigmas))
        self.begin_conv = nn.Conv2d(channels, ngf, 3, padding=1)
        self.normalizer = _InstanceNormPlus(ngf)
        self.end_conv = nn.Conv2d(ngf, channels, 3, padding=1)
        g2 = 2 * ngf
        self.res1 = nn.ModuleList([_ResidualBlock(ngf, ngf, act), _ResidualBlock(ngf, ngf, act)])
        self.res2 = nn.ModuleList([_ResidualBlock(ngf, g2, act, "down"),
                                   _ResidualBlock(g2, g2, act)])
        self.res3 = nn.ModuleList([_ResidualBlock(g2, g2, act, "down", dilation=2),
                                   _ResidualBlock(g2, g2, act, dilation=2)])
        self.res4 = nn.ModuleList([_ResidualBlock(g2, g2, act, "down", dilation=4),
                                   _ResidualBlock(g2, g2, act, dilation=4)])
        self.refine1 = _RefineBlock([g2], g2, act, start=True)
        self.refine2 = _RefineBlock([g2, g2], g2, act)
        self.refine3 = _RefineBlock([g2, g2], ngf, act)
        self.refine4 = _RefineBlock([ngf, ngf], ngf, act, end=True)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The network before the division by sigma (``sigma * score``)."""
        h = x if self.rescaled else 2 * x - 1.0
        h = self.begin_conv(h)
        layers = []
        for stage in (self.res1, self.res2, self.res3, self.res4):
            for block in stage:
                h = block(h)
            layers.append(h)
        l1, l2, l3, l4 = layers
        r = self.refine1([l4], l4.shape[2:])
        r = self.refine2([l3, r], l3.shape[2:])
        r = self.refine3([l2, r], l2.shape[2:])
        r = self.refine4([l1, r], l1.shape[2:])
        return self.end_conv(self.act(self.normalizer(r)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Score at noise-level indices ``y`` (LongTensor, shape (B,)), as the original."""
        used = self.sigmas[y].reshape(x.shape[0], *([1] * (x.ndim - 1)))
        return self.body(x) / used

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Score at arbitrary noise levels ``sigma`` (scalar or shape (B,)): ``body / sigma``."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim:
            sigma = sigma.reshape(x.shape[0], *([1] * (x.ndim - 1)))
        return self.body(x) / sigma


def _yaml_sections(config: Any) -> tuple[dict, dict]:
    cfg = as_dict(config)
    if "yaml_config" in cfg:  # conformance JSON
        cfg = cfg["yaml_config"]
    if "config_model" in cfg:  # manifest JSON
        return cfg["config_model"], cfg["config_data"]
    return section(cfg, "model", arch="NCSNv2"), section(cfg, "data", arch="NCSNv2")


def build(config: Any) -> NCSNv2:
    """Build NCSNv2 from a QCS-SGM / ncsnv2 YAML configuration.

    Parameters
    ----------
    config : dict or namespace
        The YAML (``configs/mnist.yml``, ``configs/celeba.yml`` ...) as a dict or as the
        namespace of ``dict2namespace``; reads ``model.{ngf, sigma_begin, sigma_end,
        num_classes, sigma_dist, normalization, nonlinearity}`` and ``data.{channels,
        rescaled, logit_transform, dataset}``. The conformance JSON (``yaml_config`` key) and
        the manifests (``config_model``/``config_data``) are accepted too.

    Returns
    -------
    NCSNv2
        Freshly initialised network; ``state_dict`` equals the original's without the
        ``module.`` prefix.

    Examples
    --------
    >>> from invdiff_models import ncsnv2
    >>> cfg = {"model": {"ngf": 16, "sigma_begin": 50, "sigma_end": 0.01, "num_classes": 232,
    ...                  "normalization": "InstanceNorm++", "nonlinearity": "elu"},
    ...        "data": {"channels": 1, "image_size": 28}}
    >>> net = ncsnv2.build(cfg)
    >>> sum(p.numel() for p in net.parameters())
    465873
    """
    model, data = _yaml_sections(config)
    where = "NCSNv2 config"
    norm = model.get("normalization", "InstanceNorm++")
    if norm != "InstanceNorm++":
        raise NotImplementedError(
            f"model.normalization={norm!r}: only 'InstanceNorm++' (all released NCSNv2 "
            "configs) is implemented"
        )
    if str(data.get("dataset", "")).upper() in ("FFHQ", "LSUN"):
        raise NotImplementedError(
            f"data.dataset={data['dataset']!r} uses NCSNv2Deepest, which is not implemented"
        )
    if model.get("spec_norm", False):
        raise NotImplementedError("model.spec_norm=True is not implemented")
    begin = as_float(require(model, "sigma_begin", where=where), "sigma_begin", where=where,
                     positive=True)
    end = as_float(require(model, "sigma_end", where=where), "sigma_end", where=where,
                   positive=True)
    if not end < begin:
        raise ValueError(f"{where} needs sigma_end < sigma_begin; received sigma_begin={begin}, "
                         f"sigma_end={end}")
    sigmas = get_sigmas(begin, end,
                        as_int(require(model, "num_classes", where=where), "num_classes",
                               where=where, low=2),
                        model.get("sigma_dist", "geometric"))
    return NCSNv2(
        channels=as_int(require(data, "channels", where=where), "channels", where=where, low=1),
        ngf=as_int(require(model, "ngf", where=where), "ngf", where=where, low=1),
        sigmas=sigmas,
        nonlinearity=model.get("nonlinearity", "elu"),
        rescaled=bool(data.get("rescaled", False) or data.get("logit_transform", False)),
    )

