"""``xdream characterise``: a real run on EfficientNet-Lite0 writes every output; bad input is
one line, exit 2, nothing written."""

import csv
import json
import tomllib

import numpy as np
import pytest

from xdream.cli import main

SMALL = ["--set", "hues=[0, 60, 120, 180, 240, 300]", "--set", "orientations=[0, 90]", "--set", "phases=[0, 180]",
         "--set", "frequencies=[1, 4]", "--set", "responder.input_size=64", "--size", "64", "--quiet"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_layer_and_unit_run_writes_tables_plots_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["characterise", "efficientnet_lite0:_blocks.0", "efficientnet_lite0:_blocks.1:3",
                 "--output", str(out), *SMALL])
    assert code == 0
    printed = capsys.readouterr().out
    assert "efficientnet_lite0:_blocks.0 " in printed and "spec opp" in printed
    units = read_csv(out / "classification.csv")
    assert len(units) == 16 + 1
    assert {u["spectral_class"] for u in units} <= {"opponent", "non-opponent excitatory", "non-opponent inhibitory", "unresponsive"}
    presentations = 3 + 6 + 2 * 2 * 2
    rows = read_csv(out / "responses" / "efficientnet_lite0-_blocks.0-5.csv")
    assert len(rows) == presentations and {r["sweep"] for r in rows} == {"baseline", "spectral", "spatial"}
    assert rows[0]["unit"] == "efficientnet_lite0:_blocks.0:5"
    raw = np.load(out / "responses.npz")
    assert raw["efficientnet_lite0-_blocks.0__responses"].shape == (presentations, 16)
    first = next(r for r in rows if r["presentation"] == "0")
    assert float(first["response"]) == pytest.approx(raw["efficientnet_lite0-_blocks.0__responses"][0, 5], rel=1e-6)
    summary = read_csv(out / "layer_summary.csv")
    assert [s["group"] for s in summary] == ["efficientnet_lite0:_blocks.0", "efficientnet_lite0:_blocks.1:3"]
    for s in summary:
        for sweep in ("spectral", "spatial"):
            assert sum(float(s[f"{sweep}_{c}"]) for c in ("opponent", "non-opponent", "unresponsive")) == pytest.approx(1)
    n_opp = sum(u["spectral_class"] == "opponent" for u in units[:16])
    assert float(summary[0]["spectral_opponent"]) == pytest.approx(n_opp / 16)
    assert len(list((out / "plots").glob("*.png"))) == 17
    for name in ("stimuli.png", "layer_summary.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["targets"] == ["efficientnet_lite0:_blocks.0", "efficientnet_lite0:_blocks.1:3"]
    assert config["protocol"]["frequencies"] == [1, 4]
    assert json.loads((out / "summary.json").read_text())["units"] == 17


def test_noisy_run_records_clean_responses(tmp_path):
    out = tmp_path / "noisy"
    code = main(["characterise", "efficientnet_lite0:_blocks.0:2", "--output", str(out), "--noise", "poisson",
                 "--set", "repeats=3", "--set", "baseline_repeats=6", "--set", "noise.gain=5.0", "--no-unit-plots", *SMALL])
    assert code == 0
    raw = np.load(out / "responses.npz")
    noisy, clean = raw["efficientnet_lite0-_blocks.0-2__responses"], raw["efficientnet_lite0-_blocks.0-2__clean"]
    assert noisy.shape == clean.shape == (3 * 6 + 6 * 3 + 8 * 3, 1)
    assert np.all(noisy == np.round(noisy)) and not np.array_equal(noisy, clean)  # spike counts
    assert read_csv(out / "classification.csv")[0]["spatial_method"] in ("ttest", "exact")
    assert not list((out / "plots").iterdir())


def test_summary_records_the_torch_threads_its_responses_depend_on(tmp_path):
    """A unit's responses differ bit-wise between 1 and 2 torch threads (efficientnet_lite0:
    _blocks.4:3, coarse protocol): summary.json says which count recorded them."""
    import torch

    out, before = tmp_path / "one", torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["characterise", "efficientnet_lite0:_blocks.0:2", "--output", str(out), "--no-unit-plots",
                     *SMALL]) == 0
    finally:
        torch.set_num_threads(before)
    assert json.loads((out / "summary.json").read_text())["threads"] == 1


def test_alpha_is_taken_by_the_rules_that_use_it_and_defaults_to_0_05(tmp_path):
    """``--alpha`` with ``--method auto`` (its t-test on noisy units) is recorded; without it, 0.05."""
    for out, alpha in ((tmp_path / "given", ["--alpha", "0.01"]), (tmp_path / "default", [])):
        assert main(["characterise", "efficientnet_lite0:_blocks.0:2", "--method", "auto", *alpha, "--output", str(out),
                     "--no-unit-plots", *SMALL]) == 0
        assert tomllib.loads((out / "config.toml").read_text())["alpha"] == (0.01 if alpha else 0.05)


BAD = [
    (["efficientnet_lite0:_blocks.0", "--preset", "fine"], "unknown preset 'fine'; valid: default, coarse"),
    (["efficientnet_lite0:_blocks.0", "--set", "frequencies=[]"], "empty parameter range: frequencies = []"),
    (["efficientnet_lite0:_blocks.0", "--set", "orientations={start=0, stop=0, step=10}"], "empty parameter range: orientations"),
    (["efficientnet_lite0:_fc"], "layer '_fc' outputs [1000] per image, no spatial map for the centre-unit read-out"),
    (["efficientnet_lite0:_blocks.0", "--noise", "poisson"], "noisy responses need repeats >= 2"),
    (["efficientnet_lite0:_blocks.0", "--set", "colour=red"], "unknown protocol key 'colour'"),
    (["efficientnet_lite0:_blocks.0", "--noise", "laplace", "--preset", "coarse"], "unknown noise 'laplace'"),
    (["efficientnet_lite0:_blocks.0", "--method", "bayes"], "unknown classification method 'bayes'"),
    (["efficientnet_lite0:_blocks.0", "--method", "ttest"], "the t-test needs"),
    # was accepted and ignored: the exact rule has no error rate
    (["efficientnet_lite0:_blocks.0", "--method", "exact", "--alpha", "0.01"],
     "--alpha 0.01 is not used by method 'exact'; methods that use it: auto (on noisy units), ttest"),
    (["efficientnet_lite0:_blocks.0:999"], "channel 999 out of range"),
    (["vgg99:features.0"], "unknown model 'vgg99'"),
    (["efficientnet_lite0:_blocks.0", "--set", "noise.gain=2"], "noise options given without --noise"),
    (["efficientnet_lite0:_blocks.0", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    # ended in "Storage size calculation overflowed" (a traceback) after the run folder was made
    (["efficientnet_lite0:_blocks.0:2", "--size", "99999999999"], "size must be in [1, 2048] px, got 99999999999"),
    (["efficientnet_lite0:_blocks.0:2", "--size", "2048", "--batch-size", "1000000"],
     "batch_size 1000000 needs about"),
    (["efficientnet_lite0:_blocks.0:2", "--set", "responder.input_size=2048", "--batch-size", "1000000"],
     "batch_size 1000000 needs about"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[1:]) or a[0] for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_written(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["characterise", *argv, "--output", "out", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
