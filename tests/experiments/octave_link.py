"""What the tests of the MATLAB-language rigs over the binding-free ZeroMQ link
(experiments/rig_matlab, experiments/rig_monkeylogic) share: where Octave is, why their tests
would be skipped, a free loopback port, the stand-in neuron and a row of `xdream rig check`."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from xdream.images.io import to_uint8

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
OCTAVE = shutil.which("octave-cli") or shutil.which("octave")
ROW = re.compile(r"^(PASS|FAIL|SKIP|NOT RUN|WAIVED) +(.+?)  +§")  # a row of `xdream rig check`'s table


def octave_link_problem() -> str | None:
    """Why the link cannot run here (no Octave, or no instrument-control >= 0.8), or None."""
    if OCTAVE is None:
        return "GNU Octave is not installed (Debian: apt-get install octave octave-instrument-control; or `make octave`)"
    out = subprocess.run([OCTAVE, "--no-gui", "--quiet", "--eval",
                          "pkg load instrument-control; disp(exist('tcpserver') > 0 && exist('tcpclient') > 0)"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or out.stdout.strip() != "1":
        return ("Octave's instrument-control package (>= 0.8, tcpserver/tcpclient) does not load "
                f"(Debian: octave-instrument-control): {out.stderr.strip()[:200]}")
    return None



def stand_in_neuron(images) -> np.ndarray:
    """The MATLAB-language rigs' stand-in neuron (rig.m's show_and_record, xdream_source_standin.m):
    the mean of the image centre, from the uint8 pixels."""
    pixels = to_uint8(images).astype(np.float64)
    h, w = pixels.shape[1:3]
    return pixels[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean(axis=(1, 2, 3))
