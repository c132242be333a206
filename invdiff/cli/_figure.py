"""The demo's figure grid, drawn with Pillow only (no matplotlib needed).

Image output, like :mod:`invdiff.io` (whose :func:`~invdiff.io.to_uint8` makes the pixels):
NumPy and Pillow are used directly here.
"""

from __future__ import annotations

import numpy as np

from ..io import to_uint8

__all__ = ["colormap", "nice_ceiling", "scale_bar_map", "draw_grid"]

# Anchor colours of a perceptually ordered dark-to-bright map (close to matplotlib's
# "magma"), interpolated linearly; enough for a legible uncertainty map.
_MAGMA = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                   [245, 125, 21], [250, 193, 39], [252, 253, 191]], dtype=np.float64) / 255.0


def colormap(v) -> np.ndarray:
    """Map ``(H, W)`` values in ``[0, 1]`` (clipped) to a ``(3, H, W)`` RGB image.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._figure import colormap
    >>> c = colormap(np.array([[0.0, 1.0]]))
    >>> c.shape, c[:, 0, 0].round(3).tolist()
    ((3, 1, 2), [0.0, 0.0, 0.016])
    """
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    pos = v * (len(_MAGMA) - 1)
    i = np.minimum(np.floor(pos).astype(int), len(_MAGMA) - 2)
    f = (pos - i)[..., None]
    rgb = (1 - f) * _MAGMA[i] + f * _MAGMA[i + 1]
    return np.moveaxis(rgb, -1, 0)


def nice_ceiling(v: float) -> float:
    """The smallest number with two significant digits that is ``>= v`` (a colour-bar top).

    Examples
    --------
    >>> from invdiff.cli._figure import nice_ceiling
    >>> nice_ceiling(0.1234), nice_ceiling(0.0), nice_ceiling(3.0)
    (0.13, 1e-06, 3.0)
    """
    v = float(v)
    if not np.isfinite(v) or v <= 1e-6:
        return 1e-6
    step = 10.0 ** (np.floor(np.log10(v)) - 1)
    return float(round(np.ceil(v / step - 1e-9) * step, 12))


def _label(v: float) -> str:
    return f"{v:.3g}"


def scale_bar_map(v, *, vmax: float | None = None, label: str = "") -> tuple[np.ndarray, float]:
    """A non-negative map as a colour image (magma) with a scale bar, ready to save.

    The map keeps its pixels (one image pixel per value, top left); to its right a vertical
    colour bar runs from 0 (bottom) to ``vmax`` (top) with three labelled ticks, and
    ``label`` (e.g. the unit) above the ticks.

    Parameters
    ----------
    v : array of shape (H, W)
        Values ``>= 0`` (clipped to ``[0, vmax]`` for display).
    vmax : float, optional
        Top of the scale; default :func:`nice_ceiling` of the maximum.
    label : str
        A short caption drawn above the bar.

    Returns
    -------
    image : numpy.ndarray
        ``(3, H', W')`` RGB intensities in ``[0, 1]``, ``H' >= H``, ``W' > W``.
    vmax : float
        The value of the top of the bar.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._figure import colormap, scale_bar_map
    >>> v = np.linspace(0.0, 0.2, 28 * 28).reshape(28, 28)
    >>> img, top = scale_bar_map(v)
    >>> top, img.shape[0], img.shape[1] >= 28, img.shape[2] > 28
    (0.2, 3, True, True)
    >>> bool(np.allclose(img[:, :28, :28], colormap(v / top), atol=0.5 / 255))  # unchanged
    True
    """
    from PIL import Image, ImageDraw

    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"v must have shape (H, W); received shape {v.shape}")
    v = np.where(np.isfinite(v), v, 0.0)
    top = nice_ceiling(v.max() if v.size else 0.0) if vmax is None else float(vmax)
    H, W = v.shape
    font = _font(11)
    ticks = [top, top / 2, 0.0]
    text_w = max(_text_width(font, s) for s in [*map(_label, ticks), label]) + 2
    pad, bar_w, head = 6, 10, 16 if label else 6
    height = max(H, 96)
    width = W + pad + bar_w + 4 + text_w + pad
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(Image.fromarray(to_uint8(colormap(v / top), data_range=(0.0, 1.0))), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, y0, y1 = W + pad, head, height - 7
    ramp = colormap(np.linspace(1.0, 0.0, y1 - y0)[:, None] * np.ones((1, bar_w)))
    canvas.paste(Image.fromarray(to_uint8(ramp, data_range=(0.0, 1.0))), (x0, y0))
    draw.rectangle((x0 - 1, y0 - 1, x0 + bar_w, y1), outline="black")
    if label:
        draw.text((x0, 1), label, fill="black", font=font)
    for value, y in zip(ticks, (y0, (y0 + y1) // 2, y1 - 1), strict=True):
        draw.line((x0 + bar_w, y, x0 + bar_w + 3, y), fill="black")
        draw.text((x0 + bar_w + 5, y - 6), _label(value), fill="black", font=font)
    rgb = np.asarray(canvas, dtype=np.float64) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)), top


def _text_width(font, text: str) -> int:
    if not text:
        return 0
    try:
        left, _, right, _ = font.getbbox(text)
        return int(right - left)
    except AttributeError:  # pragma: no cover - very old Pillow
        return 6 * len(text)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: fixed bitmap font
        return ImageFont.load_default()


def _tile(x, size: int):
    from PIL import Image

    # a diverged (non-finite) image shows black rather than stopping the figure
    img = Image.fromarray(to_uint8(np.nan_to_num(x, nan=0.0), data_range=(0.0, 1.0)))
    img = img.convert("RGB")
    # nearest neighbour: every pixel of the small images stays visible as a pixel
    return img.resize((size, size), Image.NEAREST)


def draw_grid(rows, columns, path, *, tile: int = 128, title: str = "") -> None:
    """Draw a labelled grid of images and save it as PNG.

    Parameters
    ----------
    rows : list of (str, list of (array or None, str[, float]))
        Each row: its label (``\\n`` allowed) and one ``(image, caption)`` per column;
        images are ``(C, H, W)`` in ``[0, 1]`` (C = 1 or 3), ``None`` leaves the cell empty.
        A third element ``vmax`` draws a colour bar (:func:`colormap`) from 0 to ``vmax``
        under the tile: the scale of a map drawn with ``colormap(values / vmax)``.
    columns : list of str
        Column titles.
    path : path-like
        PNG file to write.
    tile : int
        Side of each (square) tile in pixels.
    title : str
        Optional line on top.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from invdiff.cli._figure import draw_grid
    >>> path = os.path.join(tempfile.mkdtemp(), "g.png")
    >>> draw_grid([("row", [(np.zeros((1, 4, 4)), "a"), (None, "")])], ["x", "y"], path, tile=16)
    >>> os.path.getsize(path) > 0
    True
    """
    from PIL import Image, ImageDraw

    font, small = _font(15), _font(12)
    bars = any(len(cell) > 2 and cell[2] is not None for _, cells in rows for cell in cells)
    label_w, head_h, cap_h, pad = 150, 26 + (24 if title else 0), 18 + (16 if bars else 0), 6
    W = label_w + len(columns) * (tile + pad) + pad
    H = head_h + len(rows) * (tile + cap_h + pad) + pad
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 4), title, fill="black", font=font)
    for j, name in enumerate(columns):
        draw.text((label_w + pad + j * (tile + pad), head_h - 22), name, fill="black", font=font)
    for i, (label, cells) in enumerate(rows):
        top = head_h + i * (tile + cap_h + pad)
        draw.multiline_text((pad, top + 4), label, fill="black", font=font, spacing=3)
        for j, (img, caption, *vmax) in enumerate(cells):
            left = label_w + pad + j * (tile + pad)
            if img is not None:
                canvas.paste(_tile(img, tile), (left, top))
            if caption:
                draw.text((left, top + tile + 2), caption, fill="black", font=small)
            if vmax and vmax[0] is not None:
                _horizontal_bar(canvas, draw, small, left, top + tile + 20, tile, vmax[0])
    canvas.save(path, format="PNG")


def _horizontal_bar(canvas, draw, font, left: int, top: int, width: int, vmax: float) -> None:
    """A colour bar 0 .. vmax, labelled at both ends, ``width`` pixels wide at (left, top)."""
    from PIL import Image

    lo, hi = "0", _label(vmax)
    x0 = left + _text_width(font, lo) + 3
    x1 = left + width - _text_width(font, hi) - 3
    if x1 - x0 < 8:
        return
    ramp = colormap(np.ones((8, 1)) * np.linspace(0.0, 1.0, x1 - x0)[None, :])
    canvas.paste(Image.fromarray(to_uint8(ramp, data_range=(0.0, 1.0))), (x0, top + 2))
    draw.text((left, top), lo, fill="black", font=font)
    draw.text((x1 + 3, top), hi, fill="black", font=font)
