"""Where the benchmarks write and where they find MNIST (fast; the runs themselves are in
``test_benchmarks_quick.py``, marked slow).

``--quick`` results go to ``benchmarks/results/quick/`` (ignored by git) unless
``--results-dir`` says otherwise, so a smoke test never overwrites a committed result; MNIST
is found without an environment variable when it sits in ``shared/data/mnist`` next to the
checkout, and the error says where it looked and how to point to it.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from benchmarks import _common, _images
from invdiff.cli import _io

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_quick_results_go_to_the_ignored_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(_common, "QUICK_RESULTS", tmp_path / "results" / "quick")
    _common.write_results("demo-quick", ["a"], [["1"]], settings={"seed": 0})
    _common.write_results("demo", ["a"], [["1"]], settings={"seed": 0})
    assert (tmp_path / "results" / "quick" / "demo-quick.md").is_file()
    assert (tmp_path / "results" / "demo.md").is_file()
    assert not (tmp_path / "results" / "demo-quick.md").exists()
    explicit = tmp_path / "elsewhere"
    _common.write_results("demo-quick", ["a"], [["1"]], directory=explicit)
    assert (explicit / "demo-quick.json").is_file()
    assert _common.results_dir(str(explicit), quick=True) == explicit


def test_scratch_folder_is_ignored_by_git_and_no_quick_result_is_committed():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    probe = "benchmarks/results/quick/restoration-quick.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO)
    assert ignored.returncode == 0, "benchmarks/results/quick/ must be in .gitignore"
    tracked = subprocess.run(["git", "ls-files", "benchmarks/results"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked and not [f for f in tracked if "-quick" in f]


@pytest.mark.parametrize("layout", ["checkout", "worktree"])
def test_mnist_found_next_to_the_checkout_without_a_variable(layout, tmp_path, monkeypatch):
    """``<work>/shared/data/mnist`` next to ``<work>/<checkout>`` (or one level higher for a
    worktree ``<work>/wt/<name>``)."""
    monkeypatch.delenv("INVDIFF_MNIST_DIR", raising=False)
    data = tmp_path / "shared" / "data" / "mnist"
    data.mkdir(parents=True)
    (data / _io.MNIST_FILE).write_bytes(b"")
    checkout = tmp_path / ("repo" if layout == "checkout" else "wt/name")
    checkout.mkdir(parents=True)
    monkeypatch.setattr(_io, "_search_bases", lambda: [checkout])  # not this test's checkout
    assert _io.find_mnist() == data
    assert _images.default_mnist_dir() == data
    assert _io.find_mnist("auto") == data


def test_mnist_variable_and_option_win_and_the_error_says_what_to_do(tmp_path, monkeypatch):
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("INVDIFF_MNIST_DIR", str(env))
    assert _io.mnist_candidates() == [env]  # the variable is not second-guessed
    assert _io.find_mnist() is None
    message = _images.mnist_missing()
    assert str(env) in message and "INVDIFF_MNIST_DIR" in message and "--data-dir" in message
    (env / _io.MNIST_FILE).write_bytes(b"")
    assert _images.default_mnist_dir() == env
    assert _io.mnist_candidates(str(tmp_path / "x")) == [tmp_path / "x"]
    explicit = _images.mnist_missing(str(tmp_path / "x"))
    assert explicit.startswith("--data-dir: no t10k-images-idx3-ubyte.gz in")


def test_mnist_is_looked_for_next_to_this_checkout_and_the_working_directory(monkeypatch):
    monkeypatch.delenv("INVDIFF_MNIST_DIR", raising=False)
    candidates = _io.mnist_candidates()
    assert REPO.parent / "shared" / "data" / "mnist" in candidates
    assert pathlib.Path.cwd().resolve().parent / "shared" / "data" / "mnist" in candidates
