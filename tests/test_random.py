"""invdiff.random.Generator: reproducible per backend, distinct per seed, independent spawns."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import to_numpy

from invdiff.random import Generator


def _draws(rng, like):
    return [to_numpy(rng.normal((50,), like=like)), to_numpy(rng.uniform((50,), like=like)),
            to_numpy(rng.integers(0, 1000, (50,), like=like)),
            to_numpy(rng.permutation(50, like=like))]


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_same_seed_same_stream(xp, seed):
    like = xp.zeros(1)
    for a, b in zip(_draws(Generator(seed), like), _draws(Generator(seed), like), strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_differ(xp):
    like = xp.zeros(1)
    draws = [to_numpy(Generator(s).normal((20,), like=like)) for s in (0, 1, 2)]
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    fresh = [to_numpy(Generator().normal((20,), like=like)) for _ in range(2)]
    assert not np.array_equal(fresh[0], fresh[1])  # None is fresh OS entropy


def test_successive_draws_differ(xp):
    rng = Generator(0)
    a, b = (to_numpy(rng.normal((20,), like=xp.zeros(1))) for _ in range(2))
    assert not np.array_equal(a, b)


def test_spawn_is_deterministic_and_independent(xp):
    like = xp.zeros(1)
    c1 = [to_numpy(g.normal((4000,), like=like)) for g in Generator(7).spawn(3)]
    c2 = [to_numpy(g.normal((4000,), like=like)) for g in Generator(7).spawn(3)]
    parent = to_numpy(Generator(7).normal((4000,), like=like))
    for a, b in zip(c1, c2, strict=True):
        np.testing.assert_array_equal(a, b)
    streams = [*c1, parent]
    # Independent standard normals: sample correlation has sd 1/sqrt(n) ~ 0.016; 5 sd bound.
    for i in range(len(streams)):
        for j in range(i + 1, len(streams)):
            assert abs(np.corrcoef(streams[i], streams[j])[0, 1]) < 5 / np.sqrt(4000)


def test_spawning_twice_gives_new_children():
    rng = Generator(3)
    (a,), (b,) = rng.spawn(1), rng.spawn(1)
    x = np.zeros(1)
    assert not np.array_equal(a.normal(10, like=x), b.normal(10, like=x))


def test_streams_per_backend_do_not_interfere():
    torch = pytest.importorskip("torch")
    x = np.zeros(1)
    plain = Generator(5)
    mixed = Generator(5)
    a = [plain.normal(5, like=x) for _ in range(3)]
    b = []
    for _ in range(3):
        mixed.normal(5, like=torch.zeros(1))
        b.append(mixed.normal(5, like=x))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_namespace_device_dtype(xp, dtype):
    like = xp.zeros(1, dtype=getattr(xp, dtype))
    rng = Generator(0)
    for z in (rng.normal((3, 2), like=like), rng.uniform((3, 2), like=like)):
        assert type(z) is type(like) and z.dtype == like.dtype and z.shape == (3, 2)
    assert rng.normal(4, like=like, dtype=xp.float64).dtype == xp.float64
    k = rng.integers(0, 3, (6,), like=like)
    assert k.dtype == xp.int64 and type(k) is type(like)


def test_distributions(xp):
    rng = Generator(11)
    like = xp.zeros(1)
    n = 20000
    z = to_numpy(rng.normal((n,), like=like, loc=2.0, scale=3.0))
    # mean sd = 3/sqrt(n) = 0.021; variance sd = 9*sqrt(2/n) = 0.09: 5 sd bounds.
    assert abs(z.mean() - 2.0) < 5 * 3 / np.sqrt(n)
    assert abs(z.var() - 9.0) < 5 * 9 * np.sqrt(2 / n)
    u = to_numpy(rng.uniform((n,), like=like, low=-1.0, high=3.0))
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 5 * 4 / np.sqrt(12 * n)
    k = to_numpy(rng.integers(2, 5, (n,), like=like))
    assert set(np.unique(k)) == {2, 3, 4}
    p = to_numpy(rng.permutation(30, like=like))
    np.testing.assert_array_equal(np.sort(p), np.arange(30))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "abc"])
def test_bad_seed(seed):
    with pytest.raises(ValueError):
        Generator(seed)


def test_bad_integer_range():
    with pytest.raises(ValueError, match="high must exceed low"):
        Generator(0).integers(3, 3, (2,), like=np.zeros(1))


def test_seed_sequence_accepted():
    seq = np.random.SeedSequence(4)
    a = Generator(seq).normal(3, like=np.zeros(1))
    b = Generator(np.random.SeedSequence(4)).normal(3, like=np.zeros(1))
    np.testing.assert_array_equal(a, b)


def test_float32_samples_are_the_float64_ones_rounded(xp):
    """The stream does not depend on the dtype (torch and CuPy would use other algorithms
    for float32; n = 50 is past torch's vectorised threshold of 16)."""
    for kind in ("normal", "uniform"):
        wide = getattr(Generator(3), kind)((50,), like=xp.zeros(1, dtype=xp.float64))
        narrow = getattr(Generator(3), kind)((50,), like=xp.zeros(1, dtype=xp.float32))
        assert narrow.dtype == xp.float32
        np.testing.assert_array_equal(to_numpy(narrow), to_numpy(wide).astype(np.float32))


@pytest.mark.parametrize("kind", ["normal", "uniform"])
def test_non_floating_like_is_refused(xp, kind):
    draw = getattr(Generator(0), kind)
    for like in (xp.zeros(2, dtype=xp.int64), xp.zeros(2, dtype=xp.bool)):
        with pytest.raises(TypeError, match="like must have a real floating dtype"):
            draw((3,), like=like)
    with pytest.raises(TypeError, match="dtype must have a real floating dtype"):
        draw((3,), like=xp.zeros(1), dtype=xp.int64)
    z = draw((3,), like=xp.zeros(2, dtype=xp.int64), dtype=xp.float32)  # explicit dtype: fine
    assert z.dtype == xp.float32


def test_uniform_stays_below_one_after_rounding():
    import array_api_compat.numpy as xp

    u = np.array([0.5, 1.0 - 2.0**-30], dtype=np.float64).astype(np.float32)
    assert u[1] == 1.0  # float64 numbers just below 1 round up to 1 in float32
    out = Generator._unit("uniform", xp, u)
    assert out[0] == 0.5 and out[1] < 1.0 and out.dtype == np.float32


def test_devices_without_float64_or_int64():
    xs = pytest.importorskip("array_api_strict")
    for name in ("no_float64", "no_x64"):
        device = xs.Device(name)
        like = xs.zeros(1, dtype=xs.float32, device=device)
        rng = Generator(0)
        z = rng.normal((4,), like=like)
        assert z.dtype == xs.float32 and z.device == device
        k = rng.integers(0, 5, (4,), like=like)
        p = rng.permutation(6, like=like)
        integral = xs.__array_namespace_info__().default_dtypes(device=device)["integral"]
        assert k.dtype == integral and p.dtype == integral and p.device == device
        assert sorted(to_numpy(p.to_device(xs.Device("CPU_DEVICE"))).tolist()) == list(range(6))
