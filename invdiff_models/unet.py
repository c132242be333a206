"""A small ε-prediction UNet for the bundled priors (DDPM, Ho et al. 2020).

The architecture follows the DDPM / ADM family in miniature: a sinusoidal embedding of the
DDPM step, residual blocks with GroupNorm and SiLU, stride-2 convolutions down, nearest
upsampling plus convolution up, additive skip concatenation, and optional single-head
self-attention at chosen (low) resolutions. It is fully convolutional: the upsampling path
resizes to the size of its skip connection, so any spatial size works, and sizes divisible by
``2 ** (len(mults) - 1)`` reproduce the training geometry exactly.

The network is configured by a small JSON-serialisable dict (see :data:`DEFAULT_CONFIGS`) so
that a bundled weight file plus its ``.json`` sidecar fully determine the module.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNet", "DEFAULT_CONFIGS", "timestep_embedding", "count_parameters"]

#: Architecture configurations of the bundled priors (keys are the ``UNet`` arguments).
DEFAULT_CONFIGS: dict[str, dict] = {
    "mnist": {
        "in_channels": 1,
        "base_channels": 32,
        "channel_mults": [1, 2, 2],
        "num_res_blocks": 2,
        "attention_levels": [2],
        "groups": 8,
        "dropout": 0.0,
    },
    "natural": {
        "in_channels": 3,
        "base_channels": 32,
        "channel_mults": [1, 2, 2],
        "num_res_blocks": 2,
        "attention_levels": [],
        "groups": 8,
        "dropout": 0.0,
    },
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of the (possibly fractional) DDPM step.

    Parameters
    ----------
    t : torch.Tensor
        Shape ``(B,)``; the network's native step input ``k - 1`` in ``[0, T - 1]``.
    dim : int
        Embedding width (even).
    max_period : float
        Longest period of the sinusoids.

    Returns
    -------
    torch.Tensor
        Shape ``(B, dim)``: ``[cos(t w_i), sin(t w_i)]`` with ``w_i = max_period^(-i/(dim/2))``.

    Notes
    -----
    The transformer positional encoding (Vaswani et al. 2017) used by DDPM (Ho et al. 2020).

    Examples
    --------
    >>> import torch
    >>> timestep_embedding(torch.tensor([0.0, 999.0]), 8).shape
    torch.Size([2, 8])
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of a module.

    Examples
    --------
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters())


class _ResBlock(nn.Module):
    """GN-SiLU-conv, add time embedding, GN-SiLU-dropout-conv, plus a (1x1) skip."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        # Zero-init the last conv so each block starts as the identity (ADM's trick):
        # training is stabler and the untrained net predicts eps ~ 0.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class _Attention(nn.Module):
    """Single-head self-attention over all pixels, residual, GroupNorm first."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None]
        )[:, 0]
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """Small ε-prediction UNet conditioned on the DDPM step.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for MNIST, 3 for RGB); the output has the same number.
    base_channels : int
        Width of the first level.
    channel_mults : sequence of int
        Width multiplier per resolution level; ``len(channel_mults) - 1`` stride-2 downsamplings.
    num_res_blocks : int
        Residual blocks per level on the way down (one more on the way up, as in DDPM).
    attention_levels : sequence of int
        Level indices (0 = full resolution) that get a self-attention layer after each block.
    groups : int
        GroupNorm groups (must divide every width).
    dropout : float
        Dropout inside residual blocks.

    Notes
    -----
    ``forward(x, t)`` takes ``x`` of shape ``(B, C, H, W)`` and the native step ``t`` in
    ``[0, T - 1]`` (``k - 1`` for DDPM step ``k``; a float or a ``(B,)`` tensor) and returns the
    predicted noise ε with the shape of ``x`` (Ho, Jain & Abbeel 2020, Eq. 14).

    Examples
    --------
    >>> import torch
    >>> net = UNet(**DEFAULT_CONFIGS["mnist"])
    >>> net(torch.zeros(2, 1, 28, 28), torch.tensor([0.0, 500.0])).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mults=(1, 2, 2),
        num_res_blocks: int = 2,
        attention_levels=(),
        groups: int = 8,
        dropout: float = 0.0,
    ):
        super().__init__()
        mults = [int(m) for m in channel_mults]
        if not mults or any(m <= 0 for m in mults):
            raise ValueError(f"channel_mults must be positive ints, got {channel_mults!r}")
        attn = {int(a) for a in attention_levels}
        if any(not 0 <= a < len(mults) for a in attn):
            raise ValueError(
                f"attention_levels must lie in [0, {len(mults) - 1}], got {attention_levels!r}"
            )
        widths = [base_channels * m for m in mults]
        for c in [base_channels, *widths]:
            if c % groups:
                raise ValueError(f"groups={groups} must divide every width, got width {c}")
        self.base_channels = base_channels
        self.num_levels = len(mults)
        t_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(base_channels, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim)
        )
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        def block(c_in, c_out, level):
            layers = nn.ModuleList([_ResBlock(c_in, c_out, t_dim, groups, dropout)])
            if level in attn:
                layers.append(_Attention(c_out, groups))
            return layers

        self.down = nn.ModuleList()
        skip_ch = [base_channels]
        c = base_channels
        for lvl, w in enumerate(widths):
            for _ in range(num_res_blocks):
                self.down.append(block(c, w, lvl))
                c = w
                skip_ch.append(c)
            if lvl < len(widths) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skip_ch.append(c)
        self.mid = nn.ModuleList(
            [
                _ResBlock(c, c, t_dim, groups, dropout),
                _Attention(c, groups),
                _ResBlock(c, c, t_dim, groups, dropout),
            ]
        )
        self.up = nn.ModuleList()
        for lvl in reversed(range(len(widths))):
            w = widths[lvl]
            for _ in range(num_res_blocks + 1):
                self.up.append(block(c + skip_ch.pop(), w, lvl))
                c = w
            if lvl > 0:
                self.up.append(nn.ModuleList([nn.Conv2d(c, c, 3, padding=1)]))
        self.out_norm = nn.GroupNorm(groups, c)
        self.out_conv = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    @staticmethod
    def _run(layers: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            h = layer(h, emb) if isinstance(layer, _ResBlock) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.base_channels).to(x.dtype))
        h = self.stem(x)
        skips = [h]
        for layers in self.down:
            h = self._run(layers, h, emb)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, _ResBlock) else layer(h)
        for layers in self.up:
            if len(layers) == 1 and isinstance(layers[0], nn.Conv2d):
                # Upsample to the next skip's size (not a fixed x2) so odd sizes such as
                # 7 -> 14 and non-multiples still line up: the net stays fully convolutional.
                size = skips[-1].shape[-2:]
                h = layers[0](F.interpolate(h, size=size, mode="nearest"))
            else:
                h = self._run(layers, torch.cat([h, skips.pop()], dim=1), emb)
        return self.out_conv(F.silu(self.out_norm(h)))
