"""Method × task × image sweeps, serially or on Dask distributed, resumable and fault tolerant.

A sweep is a spec (TOML or a dict; :func:`load_spec`): priors, data, tasks, methods, seeds
and a batch size. It expands to *units* — one recipe call on one image batch — each of which
gives one *record* (per-image PSNR, SSIM and data consistency, NFE, seconds), written
atomically to ``DIR/records/KEY.json``, where ``KEY`` hashes the unit's full spec and the
package version. :func:`run` skips units that already have a record, so a rerun resumes an
interrupted sweep and an edited spec recomputes only the units that changed; random streams
derive from the spec alone, so the records do not depend on where or in which order the
units ran. :func:`report` prints the tables (mean ± std, paired differences with 95 %
confidence intervals, cost).

From the command line::

    invdiff sweep run SPEC.toml --out DIR [--scheduler local|serial|tcp://HOST:8786]
    invdiff sweep report DIR

Dask is imported only by :func:`run` with a Dask scheduler (``pip install 'invdiff[dask]'``);
the math is the core recipes' (:mod:`invdiff.methods`, :mod:`invdiff.baselines`).

Examples
--------
>>> import tempfile
>>> import invdiff.sweep as sw
>>> spec = {"batch": 4, "priors": {"natural": {"bundled": "natural"}},
...         "data": {"tiles": {"source": "natural", "prior": "natural", "test": 4}},
...         "tasks": {"denoise": {"operator": "identity", "sigma_y": 0.2}},
...         "methods": {"DMPS": {"steps": 4}}}
>>> out = tempfile.mkdtemp()
>>> sw.run(spec, out, scheduler="serial", progress=False)["computed"]
1
>>> sw.run(spec, out, scheduler="serial", progress=False)["computed"]  # already done
0
>>> print(sw.report(out, write=False).splitlines()[0])
# sweep sweep
"""

from __future__ import annotations

from ._errors import SweepError
from ._methods import METHODS, Method
from ._report import report
from ._run import run
from ._spec import Sweep, Unit, load_spec

__all__ = ["load_spec", "run", "report", "Sweep", "Unit", "SweepError", "METHODS", "Method"]
