"""Priors of a sweep: what a ``[priors.NAME]`` table may say, checked on the client, loaded
once per worker process.

====================  ==========================================================================
key                   the prior
====================  ==========================================================================
``bundled``           a prior shipped with ``invdiff_models`` (``"mnist"``, ``"natural"``)
``weights_dir``       ``NAME.safetensors`` + ``NAME.json`` in that folder or in ``DIR/NAME/``
                      (``name`` = the bundled name they replace; default the table's name),
                      e.g. the output of ``invdiff train``
``checkpoint``        an original checkpoint file with ``arch`` (``adm``, ``ncsnv2``,
                      ``ncsnpp``) and ``config`` (a JSON/TOML file or an inline table);
                      optional ``data_range`` (default ``[-1, 1]``)
``gmm``               an ``.npz`` with ``weights`` (K,), ``means`` (K, d), ``covs`` (K, d) or
                      (K, d, d): the exact :class:`invdiff.priors.GaussianMixturePrior` on
                      images of ``shape`` = ``[C, H, W]`` (d = C·H·W), ``process`` ``"vp"``
                      (default, ``VP.linear()``) or ``"flow"``, ``data_range`` (default
                      ``[-1, 1]``); NumPy, no torch needed
====================  ==========================================================================

Paths are relative to the spec file's folder.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from ._errors import SweepError

__all__ = ["KINDS", "check_prior", "load_prior", "backend_of"]

KINDS = ("bundled", "weights_dir", "checkpoint", "gmm")
_OPTIONAL = {"bundled": set(), "weights_dir": {"name"},
             "checkpoint": {"arch", "config", "data_range", "ema"},
             "gmm": {"shape", "process", "data_range", "prediction"}}
_REQUIRED = {"checkpoint": {"arch", "config"}, "gmm": {"shape"}}
_PROCESSES = ("vp", "flow")

_MODELS: dict[str, object] = {}  # one loaded model per prior and device, per process


def _path(value, base) -> pathlib.Path:
    p = pathlib.Path(value).expanduser()
    return p if p.is_absolute() else pathlib.Path(base) / p


def kind_of(name: str, spec: dict) -> str:
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise SweepError(f"priors.{name}: give exactly one of {', '.join(KINDS)}; received "
                         f"{sorted(spec) or 'an empty table'}")
    return kinds[0]


def backend_of(spec: dict) -> str:
    """``"numpy"`` for an exact GMM prior, ``"torch"`` for a network."""
    return "numpy" if "gmm" in spec else "torch"


def check_prior(name: str, spec: dict, base) -> None:
    """Raise :class:`SweepError` naming ``priors.NAME.KEY`` for what would fail to load."""
    if not isinstance(spec, dict):
        raise SweepError(f"priors.{name} must be a table; received {type(spec).__name__}")
    kind = kind_of(name, spec)
    unknown = set(spec) - {kind} - _OPTIONAL[kind]
    if unknown:
        raise SweepError(f"priors.{name}: unknown key(s) {sorted(unknown)} for a {kind!r} prior; "
                         f"allowed: {sorted({kind} | _OPTIONAL[kind])}")
    missing = _REQUIRED.get(kind, set()) - set(spec)
    if missing:
        raise SweepError(f"priors.{name}: a {kind!r} prior needs {sorted(missing)}")
    if "data_range" in spec:
        _data_range(name, spec["data_range"])
    if kind == "bundled":
        available = _bundled_names()
        if spec["bundled"] not in available:
            raise SweepError(f"priors.{name}.bundled: unknown prior {spec['bundled']!r}; "
                             f"bundled: {available}")
    elif kind == "weights_dir":
        _weights_folder(name, spec, base)
    elif kind == "checkpoint":
        path = _path(spec["checkpoint"], base)
        if not path.is_file():
            raise SweepError(f"priors.{name}.checkpoint: file not found: {path}")
        archs = ("adm", "ncsnv2", "ncsnpp")
        if spec["arch"] not in archs:
            raise SweepError(f"priors.{name}.arch must be one of {archs}; received "
                             f"{spec['arch']!r}")
        _config(name, spec["config"], base)
    else:
        path = _path(spec["gmm"], base)
        if not path.is_file():
            raise SweepError(f"priors.{name}.gmm: file not found: {path}")
        if spec.get("process", "vp") not in _PROCESSES:
            raise SweepError(f"priors.{name}.process must be one of {_PROCESSES}; received "
                             f"{spec.get('process')!r}")
        shape = spec["shape"]
        if (not isinstance(shape, list) or len(shape) != 3
                or not all(isinstance(s, int) and s > 0 for s in shape)):
            raise SweepError(f"priors.{name}.shape must be [C, H, W] (positive integers); "
                             f"received {shape!r}")


def _data_range(name, value) -> tuple[float, float]:
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
          and value[0] < value[1])
    if not ok:
        raise SweepError(f"priors.{name}.data_range must be [low, high] with low < high; "
                         f"received {value!r}")
    return float(value[0]), float(value[1])


def _bundled_names() -> list[str]:
    try:
        import invdiff_models as ivm
    except ImportError as e:  # pragma: no cover - the [models] extra is missing
        raise SweepError(f"bundled priors need invdiff_models (pip install 'invdiff[models]'): "
                         f"{e}") from None
    return list(ivm.available())


def _weights_folder(name, spec, base) -> pathlib.Path:
    folder = _path(spec["weights_dir"], base)
    stem = spec.get("name", name)
    for candidate in (folder, folder / stem):
        if ((candidate / f"{stem}.safetensors").is_file()
                and (candidate / f"{stem}.json").is_file()):
            return candidate
    raise SweepError(f"priors.{name}.weights_dir: no {stem}.safetensors + {stem}.json in "
                     f"{folder} or {folder / stem}")


def _config(name, config, base) -> dict:
    if isinstance(config, dict):
        return config
    path = _path(config, base)
    if not path.is_file():
        raise SweepError(f"priors.{name}.config: file not found: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        from ._spec import _toml

        return _toml().loads(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SweepError(f"priors.{name}.config: {path} is not JSON or TOML ({e})") from None


def load_prior(name: str, spec: dict, base, device: str):
    """The ScoreModel of prior ``name`` on ``device``, loaded once per process."""
    from ._keys import canonical

    cache_key = canonical([spec, str(base), device])
    if cache_key not in _MODELS:
        _MODELS[cache_key] = _load(name, spec, base, device)
    return _MODELS[cache_key]


def _load(name, spec, base, device):
    kind = kind_of(name, spec)
    if kind == "gmm":
        return _gmm(name, spec, base)
    import invdiff_models as ivm

    if kind == "bundled":
        return ivm.load(spec["bundled"], device=device)
    if kind == "weights_dir":
        folder = _weights_folder(name, spec, base)
        return ivm.load(spec.get("name", name), device=device, folder=folder)
    model = ivm.load_checkpoint(_path(spec["checkpoint"], base), spec["arch"],
                                _config(name, spec["config"], base),
                                ema=spec.get("ema", True), device=device)
    if "data_range" in spec:
        model.data_range = _data_range(name, spec["data_range"])
    return model


def _gmm(name, spec, base):
    import invdiff as ivd

    with np.load(_path(spec["gmm"], base), allow_pickle=False) as f:
        missing = {"weights", "means", "covs"} - set(f.files)
        if missing:
            raise SweepError(f"priors.{name}.gmm: the file lacks {sorted(missing)}")
        weights, means, covs = (np.asarray(f[k], dtype=np.float64)
                                for k in ("weights", "means", "covs"))
    shape = tuple(int(s) for s in spec["shape"])
    if means.shape[-1] != math.prod(shape):
        raise SweepError(f"priors.{name}: means have d = {means.shape[-1]}, shape {list(shape)} "
                         f"needs d = {math.prod(shape)}")
    process = {"vp": ivd.processes.VP.linear, "flow": ivd.processes.Flow.rectified}[
        spec.get("process", "vp")]()
    flat = ivd.priors.GaussianMixturePrior(weights, means, covs, process=process,
                                           prediction=spec.get("prediction", "eps"))
    return ImagePrior(flat, shape, _data_range(name, spec.get("data_range", [-1.0, 1.0])))


class ImagePrior:
    """A ScoreModel on flat vectors (an exact GMM) seen on ``(*batch, C, H, W)`` images.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> from invdiff.sweep._priors import ImagePrior
    >>> flat = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> ImagePrior(flat, (1, 2, 2), (-1.0, 1.0))(np.zeros((3, 1, 2, 2)), 10).shape
    (3, 1, 2, 2)
    """

    def __init__(self, flat, shape, data_range):
        self.flat = flat
        self.shape = tuple(shape)
        self.process = flat.process
        self.prediction = flat.prediction
        self.data_range = tuple(data_range)
        self.channels = self.shape[0]

    def _in(self, x):
        from .._array_api import namespace

        return namespace(x).reshape(x, tuple(x.shape[:x.ndim - 3]) + (math.prod(self.shape),))

    def _out(self, v, like):
        from .._array_api import namespace

        return namespace(v).reshape(v, tuple(like.shape))

    def __call__(self, x_t, t):
        return self._out(self.flat(self._in(x_t), t), x_t)

    vjp_accepts_callable = True

    def vjp(self, x_t, t, cotangent):
        """``(prediction, J^T cotangent)`` on images; ``cotangent`` an image or a callable."""
        if callable(cotangent):
            flat_cotangent = lambda pred: self._in(cotangent(self._out(pred, x_t)))  # noqa: E731
        else:
            flat_cotangent = self._in(cotangent)
        pred, pulled = self.flat.vjp(self._in(x_t), t, flat_cotangent)
        return self._out(pred, x_t), self._out(pulled, x_t)
