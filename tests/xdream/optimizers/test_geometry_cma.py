"""GeometryCMA and the generator metric it searches in (Wang & Ponce, ICLR 2021): on generators
with a known metric the eigenspace found is the known one, the search stays in it, the
precomputation is seeded and travels in the state dict, and a decode without gradient is refused.
The registry-wide contract (tests/xdream/optimizers/test_optimizers.py) covers it built by hand."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from xdream import Experiment, ExperimentConfig
from xdream.config.experiment import PluginConfig
from xdream.core import registry
from xdream.core.errors import ConfigError
from xdream.core.generator import Generator
from xdream.evolve.build import build_optimizer
from xdream.optimizers import geometry_cma
from xdream.optimizers.metric import metric_eigenbasis, metric_product


class LinearGenerator(Generator):
    """``image = A z`` with ``A = P diag(s) R^T`` (orthonormal ``P``, ``R``): metric
    ``J^T J = R diag(s^2) R^T`` everywhere, known exactly."""

    name = "linear-test"

    def __init__(self, dim=40, size=8, seed=0, squash=False, detach=False):
        super().__init__()
        rng = np.random.default_rng(seed)
        pixels = 3 * size * size
        self.latent_shape, self.image_size, self.squash, self.detach = (dim,), size, squash, detach
        self.rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
        self.scales = 2.0 ** -np.arange(dim, dtype=np.float64) * 3 + 0.01  # fast decay, then a floor
        left = np.linalg.qr(rng.standard_normal((pixels, dim)))[0]
        self.matrix = torch.as_tensor(left * self.scales @ self.rotation.T, dtype=torch.float32)

    def decode_tensor(self, codes):
        images = (codes @ self.matrix.T).reshape(len(codes), 3, self.image_size, self.image_size)
        images = torch.sigmoid(images) if self.squash else images
        return images.detach() if self.detach else images


def principal_cosines(a, b):
    """Cosines of the principal angles between the column spaces of ``a`` and ``b``."""
    qa, qb = np.linalg.qr(np.asarray(a, np.float64))[0], np.linalg.qr(np.asarray(b, np.float64))[0]
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def geometry(generator, options=None, seed=0, init=None):
    plugin = PluginConfig("geometry-cma", dict(options or {}))
    return build_optimizer(plugin, generator, np.random.default_rng(seed), budget=None, generations=10, init=init)


@pytest.mark.parametrize("rank, oversample, iterations", [(5, 10, 1), (5, 40, 3), (5, 10, 3)],
                         ids=["power-iteration", "exact-block", "exact-cheaper"])
def test_eigenbasis_of_a_known_metric_is_the_known_one(rank, oversample, iterations):
    g = LinearGenerator()
    points = g.sample(2, np.random.default_rng(0))
    m = metric_eigenbasis(g.decode, points, rank, np.random.default_rng(1), oversample=oversample,
                          iterations=iterations)
    assert m.basis.shape == (40, rank) and m.basis.dtype == np.float32
    np.testing.assert_allclose(m.basis.T.astype(np.float64) @ m.basis, np.eye(rank), atol=1e-5)
    np.testing.assert_allclose(principal_cosines(m.basis, g.rotation[:, :rank]), 1.0, atol=1e-4)
    np.testing.assert_allclose(m.eigenvalues, g.scales[:rank] ** 2, rtol=1e-4)
    assert m.trace_exact == (iterations == 3)  # 40 products beat 4 x 15 (and 45 > 40)
    assert m.products == (40 if m.trace_exact else 2 * 15 + 16)
    true_fraction = (g.scales[:rank] ** 2).sum() / (g.scales**2).sum()
    assert m.captured == pytest.approx(true_fraction, rel=1e-3)
    assert m.trace == pytest.approx((g.scales**2).sum(), rel=1e-3)


def test_metric_product_is_the_average_of_jacobian_products():
    """On a nonlinear decode, H V equals (1/S) sum_s J_s^T J_s V with the Jacobians formed
    explicitly (small d), so the jvp/vjp pairing and the averaging over codes are right."""
    g = LinearGenerator(dim=12, size=4, squash=True)
    points = torch.as_tensor(g.sample(3, np.random.default_rng(2)) * 3)
    vectors = np.random.default_rng(3).standard_normal((12, 5))
    expected = np.zeros((12, 12))
    for point in points:
        jac = torch.autograd.functional.jacobian(lambda z: g.decode(z[None]).reshape(-1), point).double().numpy()
        expected += jac.T @ jac / len(points)
    np.testing.assert_allclose(metric_product(g.decode, points, vectors, chunk=2), expected @ vectors,
                               rtol=1e-4, atol=1e-7)


def test_search_stays_in_the_top_eigenspace_around_the_start():
    g = LinearGenerator()
    start = np.random.default_rng(4).standard_normal(40).astype(np.float32)
    opt = geometry(g, {"rank": 4, "population": 10}, init=start)
    assert opt.geometry_report() is None  # computed at the first ask, not at construction
    u = g.rotation[:, :4]
    for _ in range(5):
        x = opt.ask().astype(np.float64)
        offsets = x - start
        outside = offsets - offsets @ u @ u.T
        assert np.abs(outside).max() < 1e-4 * np.abs(offsets).max()
        assert np.linalg.matrix_rank(offsets, tol=1e-3) == 4
        opt.tell(x.astype(np.float32), -np.sum((x - 1) ** 2, axis=1))
    report = opt.geometry_report()
    assert report["rank"] == 4 and report["points"] == 2 and report["seconds"] > 0
    assert report["captured"] == pytest.approx((g.scales[:4] ** 2).sum() / (g.scales**2).sum(), rel=1e-3)


def test_climbs_inside_the_subspace():
    """Maximising a target in the eigenspace: the score rises well above the start."""
    g = LinearGenerator()
    target = g.rotation[:, :3] @ np.array([2.0, -1.5, 1.0])
    opt = geometry(g, {"rank": 3, "population": 12, "sigma0": 0.5}, seed=5)
    first = best = -np.inf
    for gen in range(40):
        x = opt.ask()
        s = -np.sum((x - target) ** 2, axis=1)
        first = s.max() if gen == 0 else first
        best = max(best, s.max())
        opt.tell(x, s)
    assert best > -0.05 * abs(first)


def test_seeded_and_resumes_from_the_state_without_recomputing(monkeypatch):
    g = LinearGenerator(squash=True)
    a, b = geometry(g, {"rank": 6}, seed=7), geometry(g, {"rank": 6}, seed=7)
    for _ in range(3):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_array_equal(xa, xb)
        a.tell(xa, xa.sum(axis=1))
        b.tell(xb, xb.sum(axis=1))
    np.testing.assert_array_equal(a.metric.basis, b.metric.basis)
    assert not np.array_equal(geometry(g, {"rank": 6}, seed=8).ask(), geometry(g, {"rank": 6}, seed=7).ask())
    x = a.ask()  # a checkpoint between ask and tell
    state = pickle.loads(pickle.dumps(a.state_dict()))

    def never(*args, **kwargs):
        raise AssertionError("a resumed optimiser recomputed its geometry")

    monkeypatch.setattr(geometry_cma, "metric_eigenbasis", never)
    c = geometry(g, {"rank": 6}, seed=99)
    c.load_state_dict(state)
    assert c.geometry_report() == a.geometry_report()
    a.tell(x, x.sum(axis=1))
    c.tell(x, x.sum(axis=1))
    for _ in range(3):
        xa, xc = a.ask(), c.ask()
        np.testing.assert_array_equal(xa, xc)
        a.tell(xa, xa.sum(axis=1))
        c.tell(xc, xc.sum(axis=1))


def test_a_decode_without_gradient_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="'linear-test'.*without a gradient") as info:
        geometry(LinearGenerator(detach=True))
    assert "\n" not in str(info.value)


def test_without_a_generator_it_searches_the_full_space():
    opt = registry.create("optimizer", "geometry-cma", {"population": 30}, dim=10, rng=np.random.default_rng(0))
    x = opt.ask()
    assert opt.geometry_report() == {"rank": 10, "captured": None}
    assert np.linalg.matrix_rank(x.astype(np.float64)) == 10


def test_on_the_fourier_generator_the_top_directions_are_its_low_frequencies():
    """The Fourier prior scales frequency f by about 1/f: the metric's top eigenvectors put
    their weight on the lowest frequencies, and a few of them hold a large part of the trace."""
    g = registry.create("generator", "fourier", {"size": 32, "max_frequency": 4})
    m = metric_eigenbasis(g.decode, g.sample(1, np.random.default_rng(0)), 8, np.random.default_rng(0))
    rows, cols = g.latent_shape[2], g.latent_shape[3]
    fy = np.minimum(np.arange(rows), rows - np.arange(rows))[:, None]  # 0..k, then k..1
    freq = np.broadcast_to(np.hypot(fy, np.arange(cols)[None]), g.latent_shape).reshape(-1)
    weight = m.basis.astype(np.float64) ** 2  # each column sums to 1
    assert (freq @ weight).mean() < 0.5 * freq.mean()
    assert m.captured > 8 / g.latent_dim * 5  # far more than 8 random directions would hold


def run_log(path):
    return [json.loads(line)["scores"] for line in (path / "log.jsonl").read_text().splitlines()]


def test_an_experiment_with_geometry_resumes_bit_identically(tmp_path, fast_job, monkeypatch):
    """A run stopped after 2 generations and resumed (the geometry restored from the
    checkpoint, never recomputed) scores exactly what the run without a stop scored."""
    fast_job["generator"] = {"name": "fourier", "size": 32, "max_frequency": 4}
    fast_job["optimizer"] = {"name": "geometry-cma", "population": 8, "rank": 12, "points": 1}
    for path, stop in ((tmp_path / "whole", None), (tmp_path / "run", 2)):
        experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=path)
        calls = iter(range(1000))
        experiment.run(progress=False, should_stop=None if stop is None else lambda: next(calls) >= stop)
        experiment.close()
    assert len(run_log(tmp_path / "run")) == 2
    monkeypatch.setattr(geometry_cma, "metric_eigenbasis", lambda *a, **k: pytest.fail("geometry recomputed"))
    experiment = Experiment.resume(tmp_path / "run")
    experiment.run(progress=False)
    experiment.close()
    assert run_log(tmp_path / "run") == run_log(tmp_path / "whole") and len(run_log(tmp_path / "whole")) == 6
    for g in range(6):
        name = f"generations/gen_{g:04d}.npz"
        with np.load(tmp_path / "whole" / name) as a, np.load(tmp_path / "run" / name) as b:
            np.testing.assert_array_equal(a["codes"], b["codes"])


def test_a_session_thread_gets_its_own_generators_geometry_and_resumes_it(tmp_path, monkeypatch):
    """In a session of several threads (xdream.evolve.experiment) the geometry thread's optimiser
    is attached to its own generator by the same builder; a resume restores the basis from the
    checkpoint (never recomputed) and asks what the uninterrupted session asks."""
    from responders.torch_layer import TorchLayer

    layer = "efficientnet_lite0:_blocks.2"
    data = {"seed": 5, "generations": 4, "optimizer": {"name": "genetic", "population": 6}, "thread": [
        {"name": "pix", "generator": {"name": "pixel", "size": 16}, "target": f"{layer}:5"},
        {"name": "geo", "generator": {"name": "fourier", "size": 32, "max_frequency": 4}, "target": f"{layer}:3",
         "optimizer": {"name": "geometry-cma", "population": 6, "rank": 10, "points": 1}}]}
    geo = lambda session: next(t for t in session.threads if t.name == "geo").optimizer  # noqa: E731
    whole = Experiment(ExperimentConfig.from_dict(data), responder=TorchLayer(layer, input_size=64), run_dir=tmp_path / "whole")
    for _ in range(3):
        whole.step()
    assert geo(whole).geometry_report()["rank"] == 10 and geo(whole).geometry_report()["points"] == 1
    expected = geo(whole).ask()
    whole.close()
    cut = Experiment(ExperimentConfig.from_dict(data), responder=TorchLayer(layer, input_size=64), run_dir=tmp_path / "cut")
    cut.step()
    cut.step()
    cut.close()
    monkeypatch.setattr(geometry_cma, "metric_eigenbasis", lambda *a, **k: pytest.fail("geometry recomputed"))
    resumed = Experiment.resume(tmp_path / "cut", responder=TorchLayer(layer, input_size=64))
    assert resumed.generation == 2 and geo(resumed).metric is not None  # restored before any ask
    resumed.step()
    np.testing.assert_array_equal(geo(resumed).ask(), expected)
    resumed.close()
