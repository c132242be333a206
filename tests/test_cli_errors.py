"""Hostile and careless command lines: every error is one line on stderr, exit status 2.

Each case runs ``invdiff ...`` in-process and checks the policy of ``docs/errors.rst``:
exit status 2, exactly one line on stderr of the form ``invdiff COMMAND: error: ...``, the
option concerned named in it, no Python traceback, and no file written. The tiny priors of
:mod:`_cli_helpers` (a few thousand parameters) keep every case under a second; the cases
that need real sizes simulate the available memory instead of allocating it.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import pickle
import struct
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
PIL_Image = pytest.importorskip("PIL.Image")

from _cli_helpers import MNIST, NATURAL, export, export_tiny_priors, tiny_adm  # noqa: E402

from invdiff.cli import _budget, _io, main  # noqa: E402


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(export_tiny_priors(tmp_path_factory.mktemp("weights")))


@pytest.fixture(scope="module")
def adm(tmp_path_factory):
    return tiny_adm(tmp_path_factory.mktemp("adm"))


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty working folder (the current directory) with a good 8x8 RGB input."""
    monkeypatch.chdir(tmp_path)
    _png(tmp_path / "in.png", np.full((8, 8, 3), 90, np.uint8))
    return tmp_path


def _png(path, array):
    PIL_Image.fromarray(np.asarray(array)).save(path)
    return str(path)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*"))


def _restore_argv(weights, *extra, task="sr4", method="dmps", inp="in.png", out="out.png"):
    return ["restore", "--task", task, "--method", method, "--input", str(inp), "--output",
            str(out), "--steps", "2", "--weights-dir", weights, "--no-progress", *extra]


def assert_one_line_error(argv, capsys, folder, *, command, names):
    """Run ``argv``: exit 2, one error line naming ``names``, no traceback, nothing written."""
    before = _files(folder)
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (argv, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"invdiff {command}: error: "), err
    assert "Traceback" not in err and "Traceback" not in captured.out
    for name in ([names] if isinstance(names, str) else names):
        assert name in err, (name, err)
    assert _files(folder) == before, "an error must not write files"
    return err


# ------------------------------------------------------------------------------ helpers
def _png_header_only(path, width, height):
    """A PNG whose header declares ``width x height`` pixels (a decompression bomb)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return str(path)


def _float_tiff(path, array):
    PIL_Image.fromarray(np.asarray(array, dtype=np.float32), mode="F").save(path)
    return str(path)


class _Evil:
    """Unpickling this runs code: a checkpoint must never be unpickled that way."""

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(os.getcwd()) / "PWNED",))


# ------------------------------------------------------------------------------ top level
@pytest.mark.parametrize("argv, names", [
    ([], "COMMAND"),
    (["bogus"], "bogus"),
    (["restore"], "--task"),
    (["restore", "--task", "sr4", "--method", "dmps", "--input", "a.png"], "--output"),
    (["restore", "--task", "sr4", "--method", "dmps", "--input", "a", "--output", "b.png",
      "--what"], "--what"),
    (["demo", "--quick", "--nonsense"], "--nonsense"),
    (["models", "--json", "extra"], "extra"),
])
def test_usage_errors_are_one_line(argv, names, work, capsys):
    before = _files(work)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and names in err, err
    assert "usage:" not in err and "Traceback" not in err
    assert _files(work) == before


def test_help_and_version_exit_zero(capsys):
    assert main(["restore", "--help"]) == 0
    assert main(["--version"]) == 0
    assert "invdiff" in capsys.readouterr().out


# ------------------------------------------------------------------------------ restore options
@pytest.mark.parametrize("extra, names", [
    (["--steps", "0"], "--steps"),
    (["--steps", "-3"], "--steps"),
    (["--steps", "abc"], "--steps"),
    (["--steps", "1.5"], "--steps"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "x"], "--seed"),
    (["--samples", "0"], "--samples"),
    (["--samples", "-2"], "--samples"),
    (["--batch-size", "0"], "--batch-size"),      # looped forever before
    (["--batch-size", "-1"], "--batch-size"),
    (["--sigma-y", "0"], "--sigma-y"),
    (["--sigma-y", "-0.1"], "--sigma-y"),
    (["--sigma-y", "nan"], "--sigma-y"),
    (["--sigma-y", "inf"], "--sigma-y"),
    (["--threads", "0"], "--threads"),
    (["--threads", "100000"], "--threads"),
    (["--blur-sigma", "2"], "--blur-sigma"),       # only used by deblur
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "--device"),
    (["--device", "tpu"], "--device"),
    (["--device", "meta"], "--device"),
    (["--device", "cpu:3"], "--device"),
    (["--mask", "in.png"], "--mask"),              # only used by inpaint
    (["--arch", "adm"], "--arch"),                 # only with --checkpoint
    (["--config", "c.json"], "--config"),
    (["--class-label", "3"], "--class-label"),
    (["--model", "imagenet"], "--model"),
    (["--steps", "5000"], "--steps"),              # a traceback before: T = 1000
])
def test_restore_bad_option_values(extra, names, weights, work, capsys):
    argv = _restore_argv(weights, *extra)  # a repeated option: the last value counts
    assert_one_line_error(argv, capsys, work, command="restore", names=names)


@pytest.mark.parametrize("method", ["dps", "pigdm"])
def test_restore_too_many_steps_every_method(method, weights, work, capsys):
    argv = _restore_argv(weights, "--steps", "5000", method=method)
    assert_one_line_error(argv, capsys, work, command="restore", names="--steps")


@pytest.mark.parametrize("value", ["0", "nan", "inf", "-1"])
def test_restore_bad_blur_sigma(value, weights, work, capsys):
    assert_one_line_error(_restore_argv(weights, "--blur-sigma", value, task="deblur"), capsys,
                          work, command="restore", names="--blur-sigma")


def test_restore_blur_wider_than_image(weights, work, capsys):
    assert_one_line_error(_restore_argv(weights, "--blur-sigma", "50", task="deblur"), capsys, work,
                          command="restore", names="--blur-sigma")


def test_restore_batch_size_with_tv(weights, work, capsys):
    assert_one_line_error(_restore_argv(weights, "--batch-size", "2", method="tv"), capsys, work,
                          command="restore", names="--batch-size")


# ------------------------------------------------------------------------------ input files
def _bad_input(kind, folder):
    good = folder / "in.png"
    if kind == "missing":
        return str(folder / "nope.png")
    if kind == "folder":
        (folder / "dir.png").mkdir()
        return str(folder / "dir.png")
    if kind == "device":
        return "/dev/null"
    if kind == "empty":
        (folder / "empty.png").write_bytes(b"")
        return str(folder / "empty.png")
    if kind == "text":
        (folder / "t.png").write_text("not an image")
        return str(folder / "t.png")
    if kind == "truncated":
        data = good.read_bytes()
        big = folder / "big.png"
        _png(big, np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
        data = big.read_bytes()
        big.unlink()
        (folder / "trunc.png").write_bytes(data[: len(data) // 2])
        return str(folder / "trunc.png")
    if kind == "bomb":  # declares 30000 x 30000 pixels
        return _png_header_only(folder / "bomb.png", 30000, 30000)
    if kind == "bomb-warning-size":  # 10000 x 10000: Pillow would only warn
        return _png_header_only(folder / "bomb2.png", 10000, 10000)
    if kind == "nan-tiff":
        a = np.full((8, 8), 0.5, np.float32)
        a[2, 3] = np.nan
        return _float_tiff(folder / "nan.tif", a)
    if kind == "inf-tiff":
        a = np.full((8, 8), 0.5, np.float32)
        a[0, 0] = np.inf
        return _float_tiff(folder / "inf.tif", a)
    if kind == "float-255":
        return _float_tiff(folder / "f255.tif", np.full((8, 8), 200.0))
    if kind == "float-negative":
        return _float_tiff(folder / "fneg.tif", np.full((8, 8), -0.5))
    if kind == "int32-large":
        PIL_Image.fromarray(np.full((8, 8), 10**6, np.int32), mode="I").save(folder / "i.tif")
        return str(folder / "i.tif")
    if kind == "tiny":  # 1x1 -> 4x4: not a multiple of the network's 8
        return _png(folder / "one.png", np.zeros((1, 1, 3), np.uint8))
    if kind == "odd":
        return _png(folder / "odd.png", np.zeros((15, 15, 3), np.uint8))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "folder", "device", "empty", "text", "truncated",
                                  "bomb", "bomb-warning-size", "nan-tiff", "inf-tiff",
                                  "float-255", "float-negative", "int32-large", "tiny", "odd"])
def test_restore_bad_input_file(kind, weights, work, capsys):
    inp = _bad_input(kind, work)
    err = assert_one_line_error(_restore_argv(weights, inp=inp), capsys, work, command="restore",
                                names="--input")
    if kind.startswith("bomb"):
        assert "pixels" in err
    if kind in ("nan-tiff", "inf-tiff"):
        assert "non-finite" in err


def test_restore_unreadable_input(weights, work, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    (work / "in.png").chmod(0o000)
    assert_one_line_error(_restore_argv(weights), capsys, work, command="restore",
                          names="--input")


@pytest.mark.parametrize("kind", ["missing", "text", "nan-tiff", "size", "black"])
def test_restore_bad_mask(kind, weights, work, capsys):
    if kind == "size":
        mask = _png(work / "m.png", np.full((4, 4), 255, np.uint8))
    elif kind == "black":
        mask = _png(work / "m.png", np.zeros((8, 8), np.uint8))
    else:
        mask = _bad_input(kind, work)
    assert_one_line_error(_restore_argv(weights, "--mask", mask, task="inpaint"), capsys, work,
                          command="restore", names="--mask")


# ------------------------------------------------------------------------------ output files
@pytest.mark.parametrize("kind", ["suffix", "no-folder", "is-folder", "std-is-folder",
                                  "npz-is-folder", "empty", "dot", "proc", "read-only"])
def test_restore_bad_output_checked_before_sampling(kind, weights, work, capsys, monkeypatch):
    extra = []
    if kind == "suffix":
        out = work / "out.xyz"
    elif kind == "no-folder":
        out = work / "missing" / "out.png"
    elif kind == "is-folder":
        (work / "o.png").mkdir()
        out = work / "o.png"
    elif kind == "std-is-folder":
        (work / "out_std.png").mkdir()
        out, extra = work / "out.png", ["--samples", "2"]
    elif kind == "npz-is-folder":
        (work / "out_posterior.npz").mkdir()
        out, extra = work / "out.png", ["--npz"]
    elif kind == "empty":
        out = ""
    elif kind == "dot":
        out = "."
    elif kind == "proc":  # a folder nobody can create files in, root included
        out = pathlib.Path("/proc/invdiff-out.png")
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write into read-only folders")
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "out.png"
    sampled = []
    from invdiff.cli import _restore

    monkeypatch.setattr(_restore, "sample", lambda *a, **k: sampled.append(1) or 1 / 0)
    assert_one_line_error(_restore_argv(weights, *extra, out=out), capsys, work, command="restore",
                          names="--output")
    assert not sampled, "the output must be checked before any sampling"


# ------------------------------------------------------------------------------ --weights-dir
def _broken_weights(kind, folder):
    folder = pathlib.Path(folder) / f"w-{kind}"
    folder.mkdir()
    meta = export(folder, "natural", NATURAL, 3, None, 8, seed=0)
    side, st = folder / "natural.json", folder / "natural.safetensors"
    if kind == "json-syntax":
        side.write_text("{not json")
    elif kind == "json-list":
        side.write_text("[1, 2]")
    elif kind == "no-config":
        side.write_text(json.dumps({k: v for k, v in meta.items() if k != "config"}))
    elif kind == "process-ve":
        side.write_text(json.dumps({**meta, "process": {"kind": "VE"}}))
    elif kind == "channels-7":
        side.write_text(json.dumps({**meta, "channels": 7}))
    elif kind == "range-reversed":
        side.write_text(json.dumps({**meta, "data_range": [1.0, -1.0]}))
    elif kind == "config-negative":
        side.write_text(json.dumps({**meta, "config": {**NATURAL, "base_channels": -4}}))
    elif kind == "config-wrong":  # weights saved for another configuration
        side.write_text(json.dumps({**meta, "config": {**NATURAL, "base_channels": 16}}))
    elif kind == "truncated":
        st.write_bytes(st.read_bytes()[:200])
    elif kind == "garbage":
        st.write_bytes(os.urandom(4096))
    elif kind == "other-net":  # the mnist network's weights under the natural sidecar
        export(folder, "mnist", MNIST, 1, 28, 4, seed=1)
        st.write_bytes((folder / "mnist.safetensors").read_bytes())
    elif kind == "prediction":
        side.write_text(json.dumps({**meta, "prediction": "velocity"}))
    else:
        raise AssertionError(kind)
    return str(folder)


@pytest.mark.parametrize("kind", ["json-syntax", "json-list", "no-config", "process-ve",
                                  "channels-7", "range-reversed", "config-negative",
                                  "config-wrong", "truncated", "garbage", "other-net",
                                  "prediction"])
def test_restore_broken_weights_dir(kind, tmp_path_factory, work, capsys):
    folder = _broken_weights(kind, tmp_path_factory.mktemp("broken"))
    assert_one_line_error(_restore_argv(folder), capsys, work, command="restore",
                          names="--weights-dir")


def test_restore_missing_weights_dir(work, capsys):
    assert_one_line_error(_restore_argv(str(work / "nowhere")), capsys, work, command="restore",
                          names="--weights-dir")


@pytest.mark.parametrize("kind", ["missing", "json-syntax", "no-config"])
def test_models_broken_weights_dir(kind, tmp_path_factory, work, capsys):
    folder = str(work / "nowhere") if kind == "missing" else _broken_weights(
        kind, tmp_path_factory.mktemp("broken"))
    assert_one_line_error(["models", "--weights-dir", folder], capsys, work, command="models",
                          names="--weights-dir")


# ------------------------------------------------------------------------------ --checkpoint
def _ckpt_case(kind, folder, adm):
    ckpt, config = adm
    base = ["--checkpoint", str(ckpt), "--arch", "adm", "--config", str(config)]
    if kind == "missing":
        return ["--checkpoint", str(folder / "no.pt"), "--arch", "adm", "--config",
                str(config)], "--checkpoint"
    if kind == "no-arch":
        return ["--checkpoint", str(ckpt)], "--arch"
    if kind == "no-config":
        return ["--checkpoint", str(ckpt), "--arch", "adm"], "--config"
    if kind == "config-missing":
        return base[:-1] + [str(folder / "none.json")], "--config"
    if kind == "config-syntax":
        (folder / "bad.json").write_text("{oops")
        return base[:-1] + [str(folder / "bad.json")], "--config"
    if kind == "config-list":
        (folder / "list.json").write_text("[]")
        return base[:-1] + [str(folder / "list.json")], "--config"
    if kind == "config-mismatch":  # the weights were saved for 32 channels
        (folder / "c64.json").write_text(json.dumps({**json.loads(config.read_text()),
                                                     "num_channels": 64}))
        return base[:-1] + [str(folder / "c64.json")], "--checkpoint"
    if kind == "config-nonsense":
        (folder / "cn.json").write_text(json.dumps({"image_size": "big"}))
        return base[:-1] + [str(folder / "cn.json")], "--config"
    if kind == "garbage":
        (folder / "g.pt").write_bytes(os.urandom(2048))
        return ["--checkpoint", str(folder / "g.pt")] + base[2:], "--checkpoint"
    if kind == "pickle-code":
        with open(folder / "evil.pt", "wb") as f:
            pickle.dump({"weights": _Evil()}, f)
        return ["--checkpoint", str(folder / "evil.pt")] + base[2:], "--checkpoint"
    if kind == "torch-pickle-code":
        torch.save({"weights": _Evil()}, folder / "evil2.pt")
        return ["--checkpoint", str(folder / "evil2.pt")] + base[2:], "--checkpoint"
    if kind == "folder-for-adm":
        return ["--checkpoint", str(folder)] + base[2:], "--checkpoint"
    if kind == "diffusers-file":
        return ["--checkpoint", str(ckpt), "--arch", "diffusers"], "--checkpoint"
    if kind == "diffusers-config":
        return ["--checkpoint", str(folder), "--arch", "diffusers", "--config",
                str(config)], "--config"
    if kind == "diffusers-empty":
        (folder / "empty").mkdir()
        return ["--checkpoint", str(folder / "empty"), "--arch", "diffusers"], "--checkpoint"
    if kind == "class-label-ncsnv2":
        return ["--checkpoint", str(ckpt), "--arch", "ncsnv2", "--config", str(config),
                "--class-label", "1"], "--class-label"
    if kind == "class-label-unconditional":
        return base + ["--class-label", "1"], "--config"
    if kind == "with-model":
        return base + ["--model", "natural"], "--checkpoint"
    if kind == "wrong-arch":  # ADM weights read as NCSN++
        return ["--checkpoint", str(ckpt), "--arch", "ncsnpp", "--config", str(config)], \
            "--c"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "no-arch", "no-config", "config-missing",
                                  "config-syntax", "config-list", "config-mismatch",
                                  "config-nonsense", "garbage", "pickle-code",
                                  "torch-pickle-code", "folder-for-adm", "diffusers-file",
                                  "diffusers-config", "diffusers-empty", "class-label-ncsnv2",
                                  "class-label-unconditional", "with-model", "wrong-arch"])
def test_restore_bad_checkpoint(kind, adm, work, capsys):
    extra, names = _ckpt_case(kind, work, adm)
    argv = ["restore", "--task", "denoise", "--method", "dmps", "--input", "in.png",
            "--output", "out.png", "--steps", "2", "--no-progress", *extra]
    assert_one_line_error(argv, capsys, work, command="restore", names=names)
    assert not (work / "PWNED").exists(), "code from a checkpoint ran"


def test_restore_size_the_checkpoint_cannot_take(adm, work, capsys):
    """A user network with two levels needs even sizes: the message gives ones that work."""
    ckpt, config = adm
    _png(work / "odd.png", np.full((9, 9, 3), 90, np.uint8))
    argv = ["restore", "--task", "denoise", "--method", "dmps", "--input", "odd.png",
            "--output", "out.png", "--steps", "2", "--no-progress", "--checkpoint", str(ckpt),
            "--arch", "adm", "--config", str(config)]
    err = assert_one_line_error(argv, capsys, work, command="restore", names="--input")
    assert "8x8" in err and "10x10" in err


# ------------------------------------------------------------------------------ memory
def test_restore_refuses_what_cannot_fit(weights, work, capsys, monkeypatch):
    """sr4 of a 128x128 image (512x512 restored) with 1 MiB 'available': refused up front,
    saying what to do, nothing sampled (the issue's 512x512 input asked for 16 GiB)."""
    monkeypatch.setattr(_budget, "available_memory", lambda device: 2**20)
    _png(work / "big.png", np.full((128, 128, 3), 90, np.uint8))
    err = assert_one_line_error(_restore_argv(weights, inp="big.png"), capsys, work,
                                command="restore", names="--input")
    assert "512x512" in err and "--force" in err and "smaller image" in err


def test_restore_refuses_absurd_sample_counts(weights, work, capsys):
    """10^9 samples of a 32x32 image cannot be stored (petabytes): refused before any work."""
    assert_one_line_error(_restore_argv(weights, "--samples", "1000000000"), capsys, work,
                          command="restore", names="--samples")


def test_sample_refuses_batch_size_zero_instead_of_looping():
    """The runner itself (not only the option) refuses a batch size that never ends."""
    import invdiff as ivd
    from invdiff.cli._restore import sample

    prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    op = ivd.operators.DenseMatrix(np.eye(2, 4))
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="batch_size"):
            sample("dmps", prior, op, np.zeros(2), 0.1, n=2, steps=2, batch_size=bad)


def test_restore_suggests_a_batch_size_that_fits(weights, work, capsys, monkeypatch):
    shape = (3, 32, 32)
    one = _budget.network_peak(_load(weights), shape, 1, grad=False) + _budget.sample_bytes(
        shape, 1, 8)
    monkeypatch.setattr(_budget, "available_memory", lambda device: int(2.2 * one))
    _png(work / "in8.png", np.full((8, 8, 3), 90, np.uint8))
    err = assert_one_line_error(_restore_argv(weights, "--samples", "8", "--batch-size", "8",
                                         inp="in8.png"), capsys, work, command="restore",
                                names="--batch-size")
    assert "--batch-size 2" in err or "--batch-size 1" in err


def test_restore_chooses_a_batch_that_fits_and_force_overrides(weights, work, capsys,
                                                               monkeypatch):
    shape = (3, 32, 32)
    one = _budget.network_peak(_load(weights), shape, 1, grad=False) + _budget.sample_bytes(
        shape, 1, 4)
    monkeypatch.setattr(_budget, "available_memory", lambda device: int(1.5 * one))
    assert main(_restore_argv(weights, "--samples", "4", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "in 4 batch(es) of 1" in out and "nothing sampled" in out
    assert not (work / "out.png").exists()
    monkeypatch.setattr(_budget, "available_memory", lambda device: 1024)
    assert main(_restore_argv(weights, "--samples", "2", "--force")) == 0
    captured = capsys.readouterr()
    assert "--force" in captured.err and (work / "out.png").exists()


def _load(weights):
    import invdiff_models as ivm

    return ivm.load("natural", folder=weights)


# ------------------------------------------------------------------------------ demo
@pytest.mark.parametrize("extra, names", [
    (["--seed", "-1"], "--seed"),
    (["--samples", "0"], "--samples"),
    (["--samples", "1000"], "--samples"),
    (["--threads", "0"], "--threads"),
    (["--device", "cuda:9"], "--device"),
    (["--data-dir", "DOES-NOT-EXIST"], "--data-dir"),
    (["--weights-dir", "DOES-NOT-EXIST"], "--weights-dir"),
])
def test_demo_bad_options(extra, names, weights, work, capsys):
    argv = ["demo", "--quick", "--no-progress", "--out", str(work / "demo"), *extra]
    if "--weights-dir" not in extra:
        argv += ["--weights-dir", weights]
    assert_one_line_error(argv, capsys, work, command="demo", names=names)


def test_demo_broken_weights_dir(tmp_path_factory, work, capsys):
    folder = _broken_weights("truncated", tmp_path_factory.mktemp("broken"))
    assert_one_line_error(["demo", "--quick", "--no-progress", "--weights-dir", folder, "--out",
                           str(work / "demo")], capsys, work, command="demo",
                          names="--weights-dir")


@pytest.mark.parametrize("kind", ["out-is-file", "out-under-file", "out-in-proc", "mnist-empty",
                                  "mnist-corrupt", "mnist-not-found"])
def test_demo_bad_folders(kind, weights, work, capsys, monkeypatch):
    sampled = []
    from invdiff.cli import _demo

    monkeypatch.setattr(_demo, "sample", lambda *a, **k: sampled.append(1) or 1 / 0)
    out, extra, names = work / "demo", [], "--out"
    if kind == "out-is-file":
        out.write_text("x")
    elif kind == "out-under-file":
        (work / "f").write_text("x")
        out = work / "f" / "demo"
    elif kind == "out-in-proc":
        out = pathlib.Path("/proc/invdiff-demo")
    elif kind == "mnist-empty":
        (work / "mn").mkdir()
        extra, names = ["--data-dir", str(work / "mn")], ["--data-dir", "INVDIFF_MNIST_DIR"]
    elif kind == "mnist-corrupt":
        (work / "mn").mkdir()
        (work / "mn" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 32))
        extra, names = ["--data-dir", str(work / "mn")], "--data-dir"
    else:  # --data-dir without a value and no MNIST anywhere it looks
        monkeypatch.setattr(_io, "mnist_candidates", lambda explicit=None: [work / "none"])
        extra, names = ["--data-dir"], ["--data-dir", "INVDIFF_MNIST_DIR"]
    argv = ["demo", "--quick", "--no-progress", "--weights-dir", weights, "--out", str(out),
            *extra]
    assert_one_line_error(argv, capsys, work, command="demo", names=names)
    assert not sampled


# ------------------------------------------------------------------------------ train
@pytest.mark.parametrize("argv, names", [
    (["train", "bogus"], "bogus"),
    (["train", "mnist", "--steps", "abc"], "--steps"),
    (["train", "mnist", "--steps", "0"], "--steps"),
    (["train", "mnist", "--threads", "0"], "--threads"),
    (["train", "mnist", "--deadline", "next tuesday"], "--deadline"),
    (["train", "mnist", "--data-dir", "DOES-NOT-EXIST"], "--data-dir"),
    (["train", "export", "mnist", "--out-dir", "DOES-NOT-EXIST"], "--out-dir"),
    (["train", "export", "mnist"], "--out-dir"),
])
def test_train_bad_options(argv, names, work, capsys, monkeypatch):
    from invdiff_models import training

    ran = []
    monkeypatch.setattr(training, "train", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(training, "export", lambda *a, **k: ran.append(1))
    assert_one_line_error(argv, capsys, work, command="train", names=names)
    assert not ran


@pytest.mark.parametrize("kind", ["out-is-file", "log-is-folder", "mnist-not-found"])
def test_train_bad_folders(kind, work, capsys, monkeypatch):
    from invdiff_models import training

    ran = []
    monkeypatch.setattr(training, "train", lambda *a, **k: ran.append(1))
    (work / "mn").mkdir()
    (work / "mn" / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    argv = ["train", "mnist", "--steps", "2", "--data-dir", str(work / "mn")]
    if kind == "out-is-file":
        (work / "o").write_text("x")
        argv += ["--out-dir", str(work / "o")]
        names = "--out-dir"
    elif kind == "log-is-folder":
        (work / "logs").mkdir()
        argv += ["--log", str(work / "logs")]
        names = "--log"
    else:
        monkeypatch.setattr(_io, "mnist_candidates", lambda explicit=None: [work / "none"])
        argv = ["train", "mnist", "--steps", "2"]
        names = ["--data-dir", "INVDIFF_MNIST_DIR"]
    assert_one_line_error(argv, capsys, work, command="train", names=names)
    assert not ran


def test_train_runtime_error_is_one_line(work, capsys, monkeypatch):
    """An error inside the training script (not an option) is still one line, exit 2."""
    from invdiff_models import training

    def broken(*a, **k):
        raise RuntimeError("CUDA error: device-side assert\ntriggered")

    monkeypatch.setattr(training, "train", broken)
    (work / "mn").mkdir()
    (work / "mn" / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    err = assert_one_line_error(["train", "mnist", "--data-dir", str(work / "mn"), "--out-dir",
                                 str(work / "never")], capsys, work, command="train",
                                names="RuntimeError")
    assert "--debug" in err


# ------------------------------------------------------------------------------ --debug
def test_debug_shows_the_traceback(weights, work, capsys):
    argv = _restore_argv(weights, "--debug", inp="missing.png")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("invdiff restore: error: --input")


def test_unexpected_error_is_one_line_and_says_debug(weights, work, capsys, monkeypatch):
    from invdiff.cli import _restore

    def boom(*a, **k):
        raise KeyError("internal")

    monkeypatch.setattr(_restore, "summarize", boom)
    assert main(_restore_argv(weights)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError" in err and "--debug" in err
    assert not (work / "out.png").exists()


# ------------------------------------------------------------------------------ odd but valid
@pytest.mark.parametrize("kind", ["rgba", "palette-transparency", "la", "bit1", "gray16",
                                  "cmyk-jpeg", "gif-frames", "exif-rotated", "float-tiff",
                                  "gray-on-rgb"])
def test_restore_accepts_odd_image_modes(kind, weights, work, capsys):
    """Valid images of every common mode restore (exit 0); warnings are one line each."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = work / "odd.png"
    if kind == "rgba":
        PIL_Image.fromarray(np.dstack([rgb, np.full((8, 8), 128, np.uint8)])).save(path)
    elif kind == "palette-transparency":
        img = PIL_Image.fromarray(rgb).convert("P")
        img.info["transparency"] = 0
        img.save(path, transparency=0)
    elif kind == "la":
        PIL_Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), mode="LA").save(path)
    elif kind == "bit1":
        PIL_Image.fromarray(rgb[..., 0] > 128).save(path)
    elif kind == "gray16":
        PIL_Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)
    elif kind == "cmyk-jpeg":
        path = work / "odd.jpg"
        PIL_Image.fromarray(rgb).convert("CMYK").save(path)
    elif kind == "gif-frames":
        path = work / "odd.gif"
        frames = [PIL_Image.fromarray(rgb), PIL_Image.fromarray(255 - rgb)]
        frames[0].save(path, save_all=True, append_images=frames[1:])
    elif kind == "exif-rotated":  # stored 8 wide x 16 high, displayed 16 x 8 (rotate 90)
        path = work / "odd.jpg"
        img = PIL_Image.fromarray(rng.integers(0, 256, (16, 8, 3), dtype=np.uint8))
        exif = img.getexif()
        exif[0x0112] = 6
        img.save(path, exif=exif.tobytes())
    elif kind == "float-tiff":
        path = work / "odd.tif"
        _float_tiff(path, rng.random((8, 8)))
    else:
        PIL_Image.fromarray(rgb[..., 0]).save(path)
    assert main(_restore_argv(weights, inp=path, method="tv")) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    for line in captured.err.splitlines():
        assert line.startswith("invdiff restore: "), line
    if kind == "gif-frames":
        assert "2 frames" in captured.err
    with PIL_Image.open(work / "out.png") as img:
        assert img.size == ((64, 32) if kind == "exif-rotated" else (32, 32))
