"""Time per generation through the MATLAB-language rig (experiments/rig_octave/rig.m) over the
binding-free ZMTP link (zmtp_socket.m on Octave's instrument-control) against the same rig over
Octave's compiled zeromq package, measured in one run on the same machine: a `zmq` client sends
40 images of 256x256x3 uint8 (7.9 MB, the spec's timing-budget generation, docs/protocol.md
§12), the rig decodes them, computes its stand-in neuron and answers. Prints the medians and
their ratio.

    python experiments/rig_matlab/bench_link.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from responders.zmq_client import ZmqResponder
from xdream.rig.ports import free_loopback_port

EXPERIMENTS = Path(__file__).resolve().parents[1]
OCTAVE = shutil.which("octave-cli") or shutil.which("octave")



def start(link: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    endpoint = f"tcp://127.0.0.1:{free_loopback_port()}"
    if link == "zmtp":
        cwd, first = workdir, (f"pkg('unload', 'zeromq'); addpath('{EXPERIMENTS / 'rig_octave'}'); "
                               f"addpath('{EXPERIMENTS / 'rig_octave' / 'zmtp'}'); ")
    else:
        cwd, first = EXPERIMENTS / "rig_octave", ""
    out = workdir / f"{link}.out"
    proc = subprocess.Popen([OCTAVE, "--no-gui", "--quiet", "--eval", f"{first}rig('{endpoint}', '')"], cwd=cwd,
                            stdout=out.open("w"), stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    while "rig listening" not in out.read_text():
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"the {link} rig did not start: {out.read_text()}")
        time.sleep(0.1)
    return proc, endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    images = torch.rand(40, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    medians = {}
    with tempfile.TemporaryDirectory() as tmp:
        for link in ("zeromq", "zmtp"):
            proc, endpoint = start(link, Path(tmp))
            try:
                with ZmqResponder(endpoint, repeats=1, heartbeat=1.0, deadline=120) as client:
                    client.respond(images[:2])  # warm up
                    times = []
                    for _ in range(args.rounds):
                        t = time.perf_counter()
                        client.respond(images)
                        times.append(time.perf_counter() - t)
            finally:
                proc.kill()
                proc.wait()
            medians[link] = statistics.median(times)
            print(f"{link:7s} link: {medians[link] * 1000:7.1f} ms per generation (median of {args.rounds}; "
                  f"min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")
    print(f"zmtp / zeromq: {medians['zmtp'] / medians['zeromq']:.2f}")


if __name__ == "__main__":
    main()
