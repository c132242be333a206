"""A sweep spec and its units.

A spec is a TOML file (or the same structure as a Python dict)::

    name = "restoration"
    seeds = [0]          # one replicate of the whole sweep per seed (or seed = 0)
    batch = 25           # test images per unit (one recipe call)
    device = "cpu"       # "cuda": each unit on its worker's GPU
    dtype = "float32"    # of the images and measurements (float64 for quantized CS)
    samples = false      # also keep every unit's samples (DIR/samples/KEY.npz)

    [priors.mnist]       # see invdiff.sweep._priors
    bundled = "mnist"

    [data.mnist]         # see invdiff.sweep._data
    prior = "mnist"
    source = "mnist"
    test = 100           # indices 9100-9199
    val = 100            # 9000-9099, for the baselines' parameter

    [tasks.sr4]          # see invdiff.sweep._tasks
    operator = "super_resolution"
    factor = 4
    sigma_y = 0.05

    [methods.DMPS]       # see invdiff.sweep._methods
    steps = 1000
    [methods.DPS]
    zeta = 0.3
    by_task = { inpaint = { zeta = 0.5 } }
    [methods.TV]
    recipe = "tv"
    grid = [1e-3, 1e-2, 1e-1]

    [report]
    pairs = [["DMPS", "DPS"]]   # paired differences (default: the first method against
                                # every other of its family)

It expands to units = seeds × data × tasks × methods × image batches (a task or method
that does not apply to a data table, e.g. colorization on grayscale digits, is skipped and
listed). Each unit has a *spec*: everything its result depends on, and nothing else (not
the method's display label, not other tasks, not the number of images of the sweep), so
that growing or editing a sweep recomputes only the units that changed.
"""

from __future__ import annotations

import copy
import dataclasses
import pathlib

from . import _data, _priors, _tasks
from ._errors import SweepError
from ._keys import unit_key
from ._methods import METHODS, default_recipe, method_arguments

__all__ = ["Sweep", "Unit", "load_spec"]

_TOP = {"name", "seed", "seeds", "batch", "device", "dtype", "samples", "priors", "data",
        "tasks", "methods", "report"}
_METHOD_KEYS = {"recipe", "tasks", "data", "by_task"}


@dataclasses.dataclass(frozen=True)
class Unit:
    """One recipe call: a method on one image batch of one task, data table and seed.

    ``key`` names its record (a hash of ``spec`` and the package version); ``spec`` is what
    the worker receives and everything its result depends on.

    Examples
    --------
    >>> from invdiff.sweep import load_spec
    >>> unit = load_spec({
    ...     "priors": {"natural": {"bundled": "natural"}},
    ...     "data": {"tiles": {"source": "natural", "prior": "natural", "test": 2}},
    ...     "tasks": {"sr4": {"operator": "super_resolution", "sigma_y": 0.05}},
    ...     "methods": {"DMPS": {}}}).units()[0]
    >>> unit.method, unit.task, unit.images
    ('DMPS', 'sr4', (0, 1))
    >>> sorted(unit.spec)
    ['data', 'device', 'dtype', 'images', 'method', 'prior', 'seed', 'task']
    """

    key: str
    method: str
    task: str
    data: str
    seed: int
    images: tuple
    spec: dict = dataclasses.field(repr=False, compare=False)

    def describe(self) -> dict:
        return {"key": self.key, "method": self.method, "task": self.task, "data": self.data,
                "seed": self.seed, "images": list(self.images)}


class Sweep:
    """A validated spec (see the module docstring); :meth:`units` expands it.

    Examples
    --------
    >>> from invdiff.sweep import load_spec
    >>> sweep = load_spec({
    ...     "batch": 4,
    ...     "priors": {"natural": {"bundled": "natural"}},
    ...     "data": {"tiles": {"source": "natural", "prior": "natural"}},
    ...     "tasks": {"sr4": {"operator": "super_resolution", "sigma_y": 0.05}},
    ...     "methods": {"DMPS": {"steps": 20}, "DPS": {"steps": 20}}})
    >>> [(u.method, u.images) for u in sweep.units()]
    [('DMPS', (0, 1, 2, 3)), ('DMPS', (4, 5, 6, 7)), ('DPS', (0, 1, 2, 3)), ('DPS', (4, 5, 6, 7))]
    """

    def __init__(self, spec: dict, base):
        self.raw = copy.deepcopy(spec)
        self.base = pathlib.Path(base).resolve()
        _check_top(spec)
        self.name = spec.get("name", "sweep")
        self.seeds = _seeds(spec)
        self.batch = _positive_int("batch", spec.get("batch", 25))
        self.device = spec.get("device", "cpu")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise SweepError(f"device must be 'cpu' or 'cuda'; received {self.device!r}")
        self.dtype = spec.get("dtype", "float32")
        if self.dtype not in ("float32", "float64"):
            raise SweepError(f"dtype must be 'float32' or 'float64'; received {self.dtype!r}")
        self.samples = bool(spec.get("samples", False))
        self.priors = _tables(spec, "priors")
        for name, p in self.priors.items():
            _priors.check_prior(name, p, self.base)
        self.data = _tables(spec, "data")
        self.data_info = {}
        for name, d in self.data.items():
            if d.get("prior") not in self.priors:
                raise SweepError(f"data.{name}.prior must name a [priors] table "
                                 f"({sorted(self.priors)}); received {d.get('prior')!r}")
            self.data_info[name] = _data.describe(name, d, self.base)
        self.tasks = {n: _tasks.check_task(n, t) for n, t in _tables(spec, "tasks").items()}
        for name, t in self.tasks.items():
            _known(f"tasks.{name}.data", t.get("data", []), self.data)
        self.methods = {n: _check_method(n, m, self.tasks, self.data)
                        for n, m in _tables(spec, "methods").items()}
        self.report = spec.get("report", {})
        for pair in self.report.get("pairs", []):
            if (not isinstance(pair, list) or len(pair) != 2
                    or not set(pair) <= set(self.methods)):
                raise SweepError(f"report.pairs: each pair must be two method labels of "
                                 f"{sorted(self.methods)}; received {pair!r}")
        self.skipped: list[str] = []
        self._units = self._expand()

    def units(self) -> list[Unit]:
        """Every unit of the sweep, in spec order (seed, data, task, method, batch)."""
        return list(self._units)

    def _expand(self) -> list[Unit]:
        import invdiff

        units, seen = [], set()
        for seed in self.seeds:
            for dname, dspec in self.data.items():
                info = self.data_info[dname]
                prior = {"name": dspec["prior"], "spec": self.priors[dspec["prior"]]}
                for tname, task in self.tasks.items():
                    why = self._task_skip(task, dname, info)
                    if why:
                        self._skip(f"task {tname} on {dname}: {why}")
                        continue
                    ids = info.test[:task.get("max_images", len(info.test))]
                    for label, m in self.methods.items():
                        why = self._method_skip(m, tname, task, dname, info)
                        if why:
                            self._skip(f"{label} on {dname}/{tname}: {why}")
                            continue
                        args = {**m["args"], **m["by_task"].get(tname, {})}
                        for b0 in range(0, len(ids), self.batch):
                            batch = tuple(ids[b0:b0 + self.batch])
                            spec = {"seed": seed, "prior": prior, "task": {"name": tname,
                                                                           **task},
                                    "data": {"name": dname, **_data_identity(dspec)},
                                    "method": {"recipe": m["recipe"], "args": args},
                                    "images": list(batch), "device": self.device,
                                    "dtype": self.dtype}
                            if METHODS[m["recipe"]].kind == "baseline":
                                spec["val"] = list(info.val)
                            key = unit_key(_identity(spec), invdiff.__version__)
                            units.append(Unit(key, label, tname, dname, seed, batch, spec))
                            seen.add(key)
        if not units:
            raise SweepError("the spec expands to no units" + (
                f" (skipped: {'; '.join(self.skipped)})" if self.skipped else ""))
        return units

    def _skip(self, why):
        if why not in self.skipped:
            self.skipped.append(why)

    @staticmethod
    def _task_skip(task, dname, info):
        if "data" in task and dname not in task["data"]:
            return "not in its data list"
        return _tasks.applicable(task, info.shape)

    @staticmethod
    def _method_skip(m, tname, task, dname, info):
        entry = METHODS[m["recipe"]]
        if "tasks" in m and tname not in m["tasks"]:
            return "not in its tasks list"
        if "data" in m and dname not in m["data"]:
            return "not in its data list"
        kind = "quantized" if _tasks.quantized(task) else "gaussian"
        if entry.measurement not in (kind, "any"):
            return f"{entry.recipe} takes {entry.measurement} measurements, the task is {kind}"
        if entry.requires is not None and entry.requires(task):
            return entry.requires(task)
        if entry.kind == "baseline" and not info.val:
            return "a tuned baseline needs validation images (val)"
        return None

    def payload(self, unit: Unit) -> dict:
        """What a worker needs to run ``unit`` (plain data, cheap to send)."""
        return {"key": unit.key, "spec": unit.spec, "base": str(self.base),
                "samples": self.samples}

    def family(self, label: str) -> str:
        return METHODS[self.methods[label]["recipe"]].family


def _identity(spec: dict) -> dict:
    """What names a unit's result: its spec without where the MNIST file lies on this
    machine (a cluster node may keep it elsewhere)."""
    if "dir" not in spec["data"]:
        return spec
    return {**spec, "data": {k: v for k, v in spec["data"].items() if k != "dir"}}


def _data_identity(dspec: dict) -> dict:
    """The data table without what only selects images (the unit lists its images)."""
    return {k: v for k, v in dspec.items() if k not in ("test", "val", "prior")}


def _check_top(spec):
    if not isinstance(spec, dict):
        raise SweepError(f"a spec must be a table (dict); received {type(spec).__name__}")
    unknown = set(spec) - _TOP
    if unknown:
        raise SweepError(f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP)}")


def _tables(spec, key) -> dict:
    value = spec.get(key)
    if not isinstance(value, dict) or not value:
        raise SweepError(f"[{key}] must hold at least one table; received {value!r}")
    for name, t in value.items():
        if not isinstance(t, dict):
            raise SweepError(f"{key}.{name} must be a table; received {type(t).__name__}")
    return value


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SweepError(f"{name} must be a positive integer; received {v!r}")
    return v


def _seeds(spec):
    if "seed" in spec and "seeds" in spec:
        raise SweepError("give seed or seeds, not both")
    seeds = spec.get("seeds", [spec.get("seed", 0)])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise SweepError(f"seeds must be a non-empty list of non-negative integers; received "
                         f"{seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"seeds must be distinct; received {seeds!r}")
    return seeds


def _known(where, names, known):
    if not isinstance(names, list):
        raise SweepError(f"{where} must be a list of names; received {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SweepError(f"{where}: unknown {unknown}; known: {sorted(known)}")


def _check_method(label, m, tasks, data) -> dict:
    where = f"methods.{label}"
    recipe = m.get("recipe", default_recipe(label))
    if recipe not in METHODS:
        raise SweepError(f"{where}.recipe: unknown recipe {recipe!r}" +
                         ("" if "recipe" in m else f" (from the label {label!r})") +
                         f"; registered: {sorted(METHODS)}")
    entry = METHODS[recipe]
    allowed = method_arguments(entry)
    args = {k: v for k, v in m.items() if k not in _METHOD_KEYS}
    by_task = m.get("by_task", {})
    if not isinstance(by_task, dict):
        raise SweepError(f"{where}.by_task must be a table of tables; received {by_task!r}")
    _known(f"{where}.by_task", list(by_task), tasks)
    for name, override in [(None, args)] + list(by_task.items()):
        if not isinstance(override, dict):
            raise SweepError(f"{where}.by_task.{name} must be a table; received {override!r}")
        unknown = set(override) - allowed
        if unknown:
            at = where if name is None else f"{where}.by_task.{name}"
            raise SweepError(f"{at}: {recipe} takes no argument(s) {sorted(unknown)}; it takes "
                             f"{sorted(allowed)}")
    if entry.kind == "baseline" and "grid" not in args:
        raise SweepError(f"{where}.grid is required: the candidates of {entry.tuned} chosen on "
                         "the validation images")
    for key in ("tasks", "data"):
        if key in m:
            _known(f"{where}.{key}", m[key], tasks if key == "tasks" else data)
    return {"recipe": recipe, "args": args, "by_task": by_task,
            **{k: m[k] for k in ("tasks", "data") if k in m}}


def load_spec(spec, *, base=None) -> Sweep:
    """Read and check a sweep spec: a TOML/JSON path or a dict.

    Parameters
    ----------
    spec : str, path-like or dict
        ``.toml`` (read with :mod:`tomllib`), ``.json``, or the table itself.
    base : path-like, optional
        Folder that relative paths in the spec start from (default: the spec file's
        folder, or the current folder for a dict).

    Returns
    -------
    Sweep

    Raises
    ------
    SweepError
        Unknown method, recipe argument, task, operator, prior or data source; a missing
        data folder, image file or weights file; values of the wrong type. Nothing has run.

    Examples
    --------
    >>> from invdiff.sweep import SweepError, load_spec
    >>> try:
    ...     load_spec({"priors": {"p": {"bundled": "natural"}},
    ...                "data": {"d": {"source": "natural", "prior": "p"}},
    ...                "tasks": {"t": {"operator": "identity", "sigma_y": 0.1}},
    ...                "methods": {"DMSP": {}}})
    ... except SweepError as e:
    ...     print(str(e)[:66])
    methods.DMSP.recipe: unknown recipe 'dmsp' (from the label 'DMSP')
    """
    if isinstance(spec, Sweep):
        return spec
    if isinstance(spec, dict):
        return Sweep(spec, base if base is not None else pathlib.Path.cwd())
    path = pathlib.Path(spec)
    if not path.is_file():
        raise SweepError(f"spec file not found: {path}")
    text = path.read_text()
    if path.suffix == ".json":
        import json

        try:
            table = json.loads(text)
        except json.JSONDecodeError as e:
            raise SweepError(f"{path}: invalid JSON: {e}") from None
    else:
        tomllib = _toml()
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SweepError(f"{path}: invalid TOML: {e}") from None
    return Sweep(table, base if base is not None else path.parent)


def _toml():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise SweepError("reading TOML specs on Python 3.10 needs tomli (pip install tomli), "
                             "or give the spec as JSON") from None
    return tomllib
