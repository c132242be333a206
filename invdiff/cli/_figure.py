"""The demo's figure grid, drawn with Pillow only (no matplotlib needed).

Image output, like :mod:`invdiff.cli._io`: NumPy and Pillow are used directly here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["colormap", "draw_grid"]

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


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: fixed bitmap font
        return ImageFont.load_default()


def _tile(x, size: int):
    from PIL import Image

    from ._io import to_uint8

    img = Image.fromarray(to_uint8(x)).convert("RGB")
    # nearest neighbour: every pixel of the small images stays visible as a pixel
    return img.resize((size, size), Image.NEAREST)


def draw_grid(rows, columns, path, *, tile: int = 128, title: str = "") -> None:
    """Draw a labelled grid of images and save it as PNG.

    Parameters
    ----------
    rows : list of (str, list of (array or None, str))
        Each row: its label (``\\n`` allowed) and one ``(image, caption)`` per column;
        images are ``(C, H, W)`` in ``[0, 1]`` (C = 1 or 3), ``None`` leaves the cell empty.
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
    label_w, head_h, cap_h, pad = 150, 26 + (24 if title else 0), 18, 6
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
        for j, (img, caption) in enumerate(cells):
            left = label_w + pad + j * (tile + pad)
            if img is not None:
                canvas.paste(_tile(img, tile), (left, top))
            if caption:
                draw.text((left, top + tile + 2), caption, fill="black", font=small)
    canvas.save(path, format="PNG")
