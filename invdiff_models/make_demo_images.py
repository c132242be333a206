"""Write ``invdiff/data/demo_images.npz``: small crops of the held-out photographs.

``invdiff demo`` restores these crops with the bundled ``natural`` prior. They come from the
two photographs that :data:`invdiff_models.training.NATURAL_EVAL` holds out of the prior's
training set (scikit-image's ``astronaut.png`` and ``coffee.png``), so the demo never shows
the prior an image it was trained on. Each crop is the photograph downscaled by an integer
factor with Pillow's Lanczos filter, then cut at a fixed offset:

==============  ==========  ======  ================  =======
key             source      scale   offset (row, col)  size
==============  ==========  ======  ================  =======
astronaut       astronaut   1/4     (0, 26)           64x64
coffee          coffee      1/6     (1, 17)           64x64
astronaut_32    astronaut   1/8     (0, 12)           32x32
coffee_32       coffee      1/12    (1, 8)            32x32
==============  ==========  ======  ================  =======

Arrays are ``(3, H, W)`` uint8 (RGB); the key ``provenance`` holds this table as JSON.
Regenerate (needs scikit-image) with::

    python -m invdiff_models.make_demo_images [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .training import NATURAL_EVAL, natural_image_paths

__all__ = ["CROPS", "make", "main"]

#: key -> (held-out photograph, downscale factor, row offset, column offset, size)
CROPS: dict[str, tuple[str, int, int, int, int]] = {
    "astronaut": ("astronaut", 4, 0, 26, 64),
    "coffee": ("coffee", 6, 1, 17, 64),
    "astronaut_32": ("astronaut", 8, 0, 12, 32),
    "coffee_32": ("coffee", 12, 1, 8, 32),
}

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "invdiff" / "data" / "demo_images.npz"


def _crop(path: Path, factor: int, row: int, col: int, size: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    small = img.resize((round(img.width / factor), round(img.height / factor)), Image.LANCZOS)
    a = np.asarray(small)[row : row + size, col : col + size]
    if a.shape != (size, size, 3):
        raise ValueError(f"crop {size}x{size} at ({row}, {col}) does not fit the "
                         f"{small.width}x{small.height} downscaled {path.name}")
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def make(out=DEFAULT_OUT) -> Path:
    """Write the crops of :data:`CROPS` to ``out`` and return the path.

    Examples
    --------
    >>> make("/tmp/demo_images.npz")  # doctest: +SKIP
    PosixPath('/tmp/demo_images.npz')
    """
    paths = natural_image_paths("eval")
    arrays = {}
    for key, (name, factor, row, col, size) in CROPS.items():
        if name not in NATURAL_EVAL:  # the demo must only show held-out photographs
            raise ValueError(f"{name!r} is not a held-out image ({sorted(NATURAL_EVAL)})")
        arrays[key] = _crop(paths[name], factor, row, col, size)
    provenance = {
        key: {"photograph": f"{NATURAL_EVAL[name][0]}/{NATURAL_EVAL[name][1]}",
              "downscale": f"1/{factor} (Pillow Lanczos)", "offset": [row, col],
              "size": [size, size]}
        for key, (name, factor, row, col, size) in CROPS.items()
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, provenance=np.array(json.dumps(provenance)), **arrays)
    return out


def main(argv=None) -> int:
    """``python -m invdiff_models.make_demo_images [--out PATH]``.

    Examples
    --------
    >>> main(["--out", "/tmp/demo_images.npz"])  # doctest: +SKIP
    0
    """
    p = argparse.ArgumentParser(description="Write the demo crops of the held-out photographs.")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    print(make(p.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
