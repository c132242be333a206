r"""
MCGdiff converges to the exact posterior; DDRM and DDNM do not
==============================================================

The SVD-native methods of :mod:`invdiff.methods` work in the spectral coordinates of the
operator. :func:`~invdiff.methods.ddrm` and :func:`~invdiff.methods.ddnm` replace the measured
coordinate of each DDIM step by a mix of :math:`y` and Tweedie's :math:`\hat x_0`: cheap, but
not posterior samplers. :func:`~invdiff.methods.mcgdiff` runs a particle filter over the DDIM
chain with a proposal built from the same SVD; its error is Monte-Carlo error and falls as the
particles grow, and independent particle systems (one sample each) remove most of it.

A 2-D Gaussian-mixture prior has an exact score at every noise level and an exact posterior,
so each method's distance to that posterior is visible directly: a noisy measurement of one
direction cuts a line through the mixture and leaves several modes along it.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import invdiff as ivd

rng = ivd.random.Generator(0)
n = 1000  # posterior samples

grid = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
means = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
weights = np.random.default_rng(1).dirichlet(np.full(len(means), 2.0))
prior = ivd.priors.GaussianMixturePrior(weights, means, np.full((len(means), 2), 0.3**2),
                                        process=ivd.processes.VP.linear())
a = np.array([[0.6, 0.8]])
sigma_y = 0.3
op = ivd.operators.DenseMatrix(a)
y = ivd.measurements.measure(op, np.array([[1.9, -0.1]]), noise=sigma_y, rng=rng)[0]
posterior = prior.posterior(a, y, sigma_y)
exact, exact2 = posterior.sample(n, rng), posterior.sample(n, rng)
floor = ivd.metrics.sliced_wasserstein(exact, exact2)

# %%
# The methods at their defaults
# -----------------------------
# DDRM: 20 steps, :math:`\eta = 0.85`, :math:`\eta_b = 1`. DDNM+: 100 steps,
# :math:`\eta = 0.85`. MCGdiff: 100 DDIM steps, :math:`\eta = 1`, :math:`\kappa = 10^{-4}`,
# with 16 to 4096 particles; its ``n`` samples are resampled from the final weighted
# particles, and ``info["ess"]`` records the effective sample size at every step.
samples, seconds = {}, {}
for name, run in {
    "DDRM": lambda: ivd.methods.ddrm(prior, op, y, sigma_y, rng=rng, n=n),
    "DDNM+": lambda: ivd.methods.ddnm(prior, op, y, sigma_y, rng=rng, n=n),
}.items():
    start = time.perf_counter()
    samples[name] = np.asarray(run())
    seconds[name] = time.perf_counter() - start

particles = (16, 64, 256, 1024, 4096)
runs = 3  # independent particle systems per count
sw_mcg, ess_min = {}, {}
for P in particles:
    dist = []
    for r in range(runs):
        start = time.perf_counter()
        x, info = ivd.methods.mcgdiff(prior, op, y, sigma_y, n_particles=P, n=n,
                                      rng=ivd.random.Generator(10 * P + r), return_info=True)
        seconds[f"MCGdiff {P}"] = time.perf_counter() - start
        dist.append(ivd.metrics.sliced_wasserstein(np.asarray(x), exact))
        if r == 0:
            samples[f"MCGdiff, {P} particles"] = np.asarray(x)
            ess_min[P] = float(np.min(info["ess"]))
    sw_mcg[P] = dist

# %%
# Independent particle systems
# ----------------------------
# The ``n`` samples of one call share one particle system, and with it its Monte-Carlo error
# (here mostly the weights of the modes). The MCGdiff paper draws one sample from each of
# ``n`` independent systems instead: repeat ``y`` along a batch axis. That costs ``n`` times
# more, but only the particle filter's bias is left, which is small already with 16 particles.
ys = np.broadcast_to(y, (n,) + y.shape).copy()
start = time.perf_counter()
samples["MCGdiff, 16 particles x 1000 systems"] = np.asarray(
    ivd.methods.mcgdiff(prior, op, ys, sigma_y, n_particles=16, rng=rng))
seconds["MCGdiff independent"] = time.perf_counter() - start

sw = {k: ivd.metrics.sliced_wasserstein(v, exact) for k, v in samples.items()}
for k in samples:
    print(f"{k:24s} SW / floor = {sw[k] / floor:5.2f}")
for P in particles:
    print(f"MCGdiff {P:5d} particles: SW / floor over {runs} runs "
          f"{np.round(np.array(sw_mcg[P]) / floor, 2)}, min ESS {ess_min[P]:.0f}")

# %%
# The picture
# -----------
lim, res = 5.5, 300
g = np.linspace(-lim, lim, res)
X = np.stack(np.meshgrid(g, g, indexing="xy"), axis=-1).reshape(-1, 2)
dens = np.exp(0.35 * np.asarray(posterior.log_prob(X, 0.0))).reshape(res, res)
shown = ["exact posterior", "DDRM", "DDNM+", "MCGdiff, 16 particles", "MCGdiff, 4096 particles",
         "MCGdiff, 16 particles x 1000 systems"]
fig = plt.figure(figsize=(14, 7.5))
spec = fig.add_gridspec(2, 4)
cells = [spec[0, 0], spec[0, 1], spec[0, 2], spec[0, 3], spec[1, 0], spec[1, 1]]
for cell, name in zip(cells, shown, strict=True):
    ax = fig.add_subplot(cell)
    pts = exact if name == "exact posterior" else samples[name]
    ax.contourf(g, g, dens, levels=12, cmap="Greys")
    ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.4, linewidths=0,
               color="tab:green" if name == "exact posterior" else "tab:blue")
    title = name if name == "exact posterior" else f"{name}\nSW/floor {sw[name] / floor:.1f}"
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
ax = fig.add_subplot(spec[1, 2:])
med = [np.median(sw_mcg[P]) / floor for P in particles]
for P in particles:
    ax.scatter([P] * runs, np.array(sw_mcg[P]) / floor, color="tab:blue", s=10, alpha=0.5)
ax.plot(particles, med, "o-", color="tab:blue", label="MCGdiff (median of runs)")
for name, color in (("DDRM", "tab:red"), ("DDNM+", "tab:orange")):
    ax.axhline(sw[name] / floor, color=color, ls="--", label=name)
ax.axhline(sw["MCGdiff, 16 particles x 1000 systems"] / floor, color="tab:green", ls="-.",
           label="MCGdiff, 16 particles,\none system per sample")
ax.axhline(1.0, color="k", ls=":", label="exact vs exact")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("particles")
ax.set_ylabel("sliced W2 / floor")
ax.legend(fontsize=8, loc="upper right")
fig.suptitle("One noisy linear measurement of a 2-D Gaussian mixture (grey: exact posterior)")
fig.tight_layout()
plt.show()
