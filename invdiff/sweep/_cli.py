"""``invdiff sweep run SPEC --out DIR`` and ``invdiff sweep report DIR``."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

__all__ = ["add_parser", "run_command"]


def add_parser(sub, formatter=argparse.RawDescriptionHelpFormatter):
    """Add the ``sweep`` subcommand (with ``run`` and ``report``) to ``sub``."""
    p = sub.add_parser(
        "sweep", formatter_class=formatter,
        help="method x task x image sweeps, serially or on a Dask cluster (resumable)",
        description=textwrap.dedent("""\
            Run a sweep spec (TOML: priors, data, tasks, methods, seeds, batch) unit by unit
            (one recipe call on one image batch -> one record in DIR/records/), serially or on
            Dask distributed, and report it. A rerun skips units that have a record: resume
            after a crash, or edit the spec and only the changed units run. See the
            documentation page "Running sweeps on a cluster"."""))
    commands = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", required=True)
    r = commands.add_parser(
        "run", formatter_class=formatter, help="run the units of SPEC that have no record yet",
        description="Run the units of SPEC that have no record in DIR yet.",
        epilog=textwrap.dedent("""\
            schedulers:
              local           a LocalCluster on this machine: --workers processes (default one
                              per CPU core, or one per GPU with device = "cuda")
              serial          this process, no Dask
              tcp://HOST:PORT an existing Dask scheduler (`dask scheduler`, then
                              `dask worker tcp://HOST:PORT --nthreads 1` on each node)"""))
    r.add_argument("spec", metavar="SPEC", help="the sweep spec (.toml or .json)")
    r.add_argument("--out", required=True, metavar="DIR", help="results folder (created)")
    r.add_argument("--scheduler", default="local", metavar="WHERE",
                   help="local (default), serial, or tcp://HOST:PORT")
    r.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local cluster: worker processes (default: cores, or GPUs)")
    r.add_argument("--threads", type=int, default=None, metavar="N", dest="torch_threads",
                   help="torch threads per worker (default 1 locally; on an existing cluster "
                        "the host's cores / its worker threads)")
    r.add_argument("--no-retry-failed", action="store_true",
                   help="keep the records of failed units instead of running them again")
    r.add_argument("--dry-run", action="store_true",
                   help="check the spec and print the units to run; run nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    rep = commands.add_parser(
        "report", formatter_class=formatter, help="print and write the tables of a sweep",
        description="Print the tables of the sweep in DIR (mean ± std, paired differences "
                    "with 95% CI, cost) and write DIR/report.md and DIR/report.json.")
    rep.add_argument("dir", metavar="DIR", help="a sweep's results folder")
    return p


def run_command(args) -> int:
    """Run ``invdiff sweep ...``; user errors raise the CLI's one-line error."""
    from ..cli._errors import CLIError
    from ._errors import SweepError

    try:
        if args.sweep_command == "report":
            return _report(args)
        return _run(args)
    except SweepError as e:
        raise CLIError(str(e)) from None


def _report(args) -> int:
    from ..cli._errors import CLIError
    from ._report import report

    if not os.path.isfile(os.path.join(args.dir, "sweep.json")):
        raise CLIError(f"DIR: no sweep.json in {args.dir} (not a sweep results folder)")
    print(report(args.dir))
    print(f"\nwrote {os.path.join(args.dir, 'report.md')} and report.json")
    return 0


def _run(args) -> int:
    from ._errors import SweepError
    from ._run import run
    from ._spec import load_spec
    from ._store import read_record

    try:
        sweep = load_spec(args.spec)
    except SweepError as e:
        raise SweepError(f"SPEC {args.spec}: {e}") from None
    if args.dry_run:
        units = list({u.key: u for u in sweep.units()}.values())
        todo = [u for u in units if (read_record(args.out, u.key) or {}).get("status") != "ok"]
        print(f"{len(units)} units, {len(units) - len(todo)} done in {args.out}, "
              f"{len(todo)} to run")
        for why in sweep.skipped:
            print(f"  skipped: {why}")
        return 0
    stats = {"records": 0}
    try:
        summary = run(sweep, args.out, scheduler=args.scheduler, workers=args.workers,
                      threads=args.torch_threads, progress=not args.no_progress,
                      retry_failed=not args.no_retry_failed,
                      on_record=lambda rec: stats.__setitem__("records", stats["records"] + 1))
    except KeyboardInterrupt:
        print(f"invdiff sweep: interrupted; {stats['records']} new record(s) are in "
              f"{args.out}; run the same command again to finish", file=sys.stderr)
        return 130
    print(f"{summary['units']} units: {summary['done_before']} already done, "
          f"{summary['computed']} computed ({summary['failed']} failed) in "
          f"{summary['seconds']:.1f} s; records in {os.path.join(args.out, 'records')}. "
          f"Tables: invdiff sweep report {args.out}")
    return 1 if summary["failed"] else 0
