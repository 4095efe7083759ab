"""How often the noise-aware classification gets the hand-built units right.

The units of the test suite (red-minus-green, luminance, dead, centre-surround DoG, double
opponent; tests/xdream/characterise/characterise_units.py) through Poisson noise at the coarse
preset (5 repeats, baseline 20), over many seeds and two alphas. Prints, per unit and alpha,
the fraction of seeds where the spectral, the spatial and both verdicts are right.

    python experiments/characterise_noise.py [SEEDS]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "xdream" / "characterise"))

import characterise_units as units  # noqa: E402
from xdream.characterise.protocol import Protocol  # noqa: E402
from xdream.characterise.record import classify_recording, present  # noqa: E402
from xdream.core.registry import create  # noqa: E402
from xdream.core.responder import NoisyResponder  # noqa: E402

EXPECTED = {
    "red_minus_green": ("opponent", "unresponsive"),
    "luminance": ("non-opponent excitatory", "non-opponent excitatory"),
    "dead": ("unresponsive", "unresponsive"),
    "centre_surround": ("unresponsive", "opponent"),
    "double_opponent": ("opponent", "opponent"),
}


def main(seeds: int = 50) -> None:
    protocol = Protocol.from_dict({"preset": "coarse"})
    print(f"Poisson noise, coarse preset: {protocol.repeats} repeats, baseline {protocol.baseline_repeats}, {seeds} seeds")
    print(f"{'unit':18s} {'alpha':>6s} {'spectral':>9s} {'spatial':>9s} {'both':>6s}")
    for name, (spectral, spatial) in EXPECTED.items():
        unit = getattr(units, name)()
        hits = {0.05: np.zeros(3), 0.01: np.zeros(3)}
        for seed in range(seeds):
            noisy = NoisyResponder(unit, create("noise", "poisson"), np.random.default_rng(seed))
            recording = present(noisy, protocol, units.SIZE, batch_size=1024, rng=np.random.default_rng(seed + 10_000))
            for alpha in hits:
                r = classify_recording(recording, protocol, name, alpha=alpha)[0]
                ok = (r.sweeps["spectral"].label == spectral, r.sweeps["spatial"].label == spatial)
                hits[alpha] += (ok[0], ok[1], all(ok))
        for alpha, h in hits.items():
            print(f"{name:18s} {alpha:6.2f} " + " ".join(f"{v / seeds:9.2f}" for v in h[:2]) + f" {h[2] / seeds:6.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
