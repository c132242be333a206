r"""The image restoration tasks of ``invdiff restore`` and ``invdiff demo``.

A task fixes the forward operator :math:`A` of :math:`y = A x + n`,
:math:`n \sim \mathcal N(0, \sigma_y^2 I)`, and what the measurement image on disk means.
Images on disk hold intensities :math:`v \in [0, 1]`; a model works in its own range
``(low, high)`` (``[-1, 1]`` for the bundled priors), :math:`x = \text{low} + s\,u`,
:math:`s = \text{high} - \text{low}`. A measurement image :math:`v = A u + n_{01}` of the
unknown :math:`u \in [0, 1]` is therefore, in model units,

.. math:: y = A x + s\, n_{01} = s\, v + \text{low}\; A\mathbf 1 ,

exactly, for every linear :math:`A` (``A 1`` is 1 for the averaging operators and differs
only at the zero-padded borders of a blur or at missing pixels); and :math:`\sigma_y` (model)
:math:`= s\,\sigma_y` (``[0, 1]`` scale). :func:`to_model_units` and :func:`to_intensities`
implement the two directions, so that the measurement images written by ``invdiff demo``
are valid inputs of ``invdiff restore``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._array_api import device_of, namespace
from .operators import Colorization, Identity, Inpainting, SeparableBlur, SuperResolution

__all__ = ["Task", "TASKS", "output_shape", "build_operator", "to_model_units",
           "to_intensities"]


@dataclass(frozen=True)
class Task:
    """One restoration task: its operator family, default noise and what ``--input`` means.

    Attributes
    ----------
    name : str
        Command-line name.
    title : str
        Human name (figure rows).
    input_help : str
        What the measurement image is (shown by ``invdiff restore --help``).
    sigma_y : float
        Default noise standard deviation on the ``[0, 1]`` intensity scale.
    tv_lam : float
        The TV baseline's :math:`\\lambda` for images in ``[-1, 1]`` (see ``invdiff demo``).

    Examples
    --------
    >>> from invdiff._tasks import TASKS
    >>> TASKS["sr4"].sigma_y
    0.025
    """

    name: str
    title: str
    input_help: str
    sigma_y: float
    tv_lam: float


#: The tasks. ``sigma_y`` = 0.025 on [0, 1] is the DMPS/DPS papers' 0.05 on [-1, 1]. ``tv_lam``
#: maximised the mean PSNR of TV on 64x64 crops of four *training* photographs of the natural
#: prior (chelsea, rocket, flower, china), never on the held-out demo images.
TASKS: dict[str, Task] = {
    "sr4": Task("sr4", "super-resolution x4",
                "the low-resolution image (h x w): the unknown 4h x 4w image downsampled x4 "
                "with the antialiased bicubic kernel (Keys a=-0.5 stretched x4; identical to "
                "Pillow's Image.resize(..., BICUBIC) except in the 2 border pixels, where we "
                "pad by reflection), plus noise",
                0.025, 0.003),
    "deblur": Task("deblur", "Gaussian deblurring",
                   "the blurred image: the unknown image convolved with a Gaussian of standard "
                   "deviation --blur-sigma pixels (2*ceil(5 sigma)+1 taps, zero padding "
                   "outside the image, same size), plus noise", 0.025, 0.003),
    "inpaint": Task("inpaint", "inpainting",
                    "the image with missing pixels; which pixels are observed comes from --mask "
                    "(white/non-zero = observed), or, without --mask, every pixel that is "
                    "exactly black (0 in all channels) counts as missing", 0.025, 0.02),
    "colorize": Task("colorize", "colorization",
                     "a grayscale image: the mean (R+G+B)/3 of the unknown color image, plus "
                     "noise (an RGB input is averaged over its channels first)", 0.025, 0.003),
    "denoise": Task("denoise", "denoising",
                    "the noisy image: the unknown image plus white Gaussian noise of standard "
                    "deviation --sigma-y", 0.1, 0.15),
}


def output_shape(task: str, measurement_shape, channels: int) -> tuple[int, int, int]:
    """Shape ``(C, H, W)`` of the image restored from a measurement of ``measurement_shape``.

    Examples
    --------
    >>> from invdiff._tasks import output_shape
    >>> output_shape("sr4", (3, 16, 24), 3), output_shape("colorize", (1, 8, 8), 3)
    ((3, 64, 96), (3, 8, 8))
    """
    _, h, w = (int(v) for v in measurement_shape)
    if task == "sr4":
        return (channels, 4 * h, 4 * w)
    return (channels, h, w)


def build_operator(task: str, shape, *, mask=None, blur_sigma: float = 3.0):
    """The forward operator of ``task`` acting on images of ``shape`` = ``(C, H, W)``.

    Parameters
    ----------
    task : str
        A key of :data:`TASKS`.
    shape : tuple of int
        The unknown image's ``(C, H, W)``.
    mask : bool array of shape ``(H, W)``, optional
        Observed pixels (``inpaint`` only; shared by the channels).
    blur_sigma : float
        Gaussian standard deviation in pixels (``deblur`` only).

    Examples
    --------
    >>> from invdiff._tasks import build_operator
    >>> build_operator("sr4", (3, 32, 32)).out_shape
    (3, 8, 8)
    """
    shape = tuple(int(v) for v in shape)
    if task == "sr4":
        return SuperResolution(4, shape, kind="bicubic")
    if task == "deblur":
        return SeparableBlur.gaussian(shape, sigma=blur_sigma)
    if task == "inpaint":
        if mask is None:
            raise ValueError("mask is required for task 'inpaint'")
        return Inpainting(mask, in_shape=shape)
    if task == "colorize":
        return Colorization(shape)
    if task == "denoise":
        return Identity(shape)
    raise ValueError(f"task must be one of {sorted(TASKS)}; received {task!r}")


def _ones_image(op, like):
    xp = namespace(like=like)
    return op.apply(xp.ones(op.in_shape, dtype=like.dtype, device=device_of(like)))


def to_model_units(v, op, data_range):
    r"""Measurement image ``v`` (``[0, 1]`` scale) in model units: :math:`s v + l A \mathbf 1`.

    Here :math:`s = \text{high} - \text{low}` and :math:`l = \text{low}`.

    Parameters
    ----------
    v : array of shape ``(*batch, *op.out_shape)``
        The measurement image (for inpainting, values at missing pixels are ignored).
    op : SVDOperator
    data_range : (float, float)
        The model's ``(low, high)``.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._tasks import build_operator, to_model_units
    >>> op = build_operator("denoise", (1, 2, 2))
    >>> to_model_units(np.full((1, 2, 2), 0.5), op, (-1.0, 1.0)).tolist()
    [[[0.0, 0.0], [0.0, 0.0]]]
    """
    low, high = (float(b) for b in data_range)
    ones = _ones_image(op, v)
    if isinstance(op, Inpainting):
        v = op.apply(v)  # missing pixels carry no measurement
    return (high - low) * v + low * ones


def to_intensities(y, op, data_range):
    r"""Inverse of :func:`to_model_units`: :math:`(y - \text{low}\,A\mathbf 1)/s`.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._tasks import build_operator, to_intensities
    >>> op = build_operator("denoise", (1, 1, 2))
    >>> to_intensities(np.array([[[-1.0, 1.0]]]), op, (-1.0, 1.0)).tolist()
    [[[0.0, 1.0]]]
    """
    low, high = (float(b) for b in data_range)
    ones = _ones_image(op, y)
    return (y - low * ones) / (high - low)
