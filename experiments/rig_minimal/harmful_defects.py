"""What `xdream rig check` prevents: the three harmful defects of issue 21, each an evolution.

For the minimal rig and three deliberately broken variants of it (mutants.py: a reply cache
keyed by (session, request id); one image's trials under another image's id; a request
interrupted by a crash started over from its first image), this script

1. runs `xdream rig check` (with a restart command) and prints its verdict, then
2. runs a 3-generation evolution through the rig (pixel generator, genetic, 8 images x 2
   repeats) in which the client is killed (SIGKILL) during generation 1 and resumed, and the
   rig is killed and restarted during generation 2, and counts from the rig's own log the
   presentations beyond the 48 the run needs (re-presented) and, from the run's saved scores
   against the rig's stand-in neuron computed from the same images, the wrong scores.

    python experiments/rig_minimal/harmful_defects.py [--trial-ms 100]

It takes about a minute per rig on a 2-core machine.
"""

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xdream.rig.ports import free_loopback_port

HERE = Path(__file__).resolve().parent
GENERATIONS, POPULATION, REPEATS = 3, 8, 2
DEFECTS = ("none", "session_keyed_cache", "ids_swapped", "restart_from_first")


class Rig:
    def __init__(self, defect, folder, trial_ms):
        self.endpoint, self.log, self.out = f"tcp://127.0.0.1:{free_loopback_port()}", folder / "rig.jsonl", folder / "rig.out"
        self.argv = [sys.executable, str(HERE / "mutants.py"), defect, self.endpoint, "--log", str(self.log),
                     "--trial-ms", str(trial_ms)]
        self.pidfile = folder / "pid"
        self.script = folder / "start.sh"
        self.script.write_text(" ".join(self.argv) + f" >>{self.out} 2>&1 &\necho $! > {self.pidfile}\n")
        self.restart_command = f"kill -9 $(cat {self.pidfile}); sleep 0.2; sh {self.script}"
        self.start()

    def start(self):
        seen = self.out.read_text().count("listening") if self.out.exists() else 0
        subprocess.run(["sh", str(self.script)], check=True)
        while not (self.out.exists() and self.out.read_text().count("listening") > seen):
            time.sleep(0.05)

    def crash_and_restart(self):
        subprocess.run(f"kill -9 $(cat {self.pidfile})", shell=True, check=True)
        time.sleep(0.2)
        self.start()

    def stop(self):
        subprocess.run(f"kill -9 $(cat {self.pidfile})", shell=True, stderr=subprocess.DEVNULL)

    def trials(self):
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        out = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "record" in event:
                out.append(event)
        return out


def check(rig):
    from xdream.rig.check import Conformance, verdict

    checker = Conformance(rig.endpoint, timeout=3.0, restart_command=rig.restart_command)
    try:
        outcomes = checker.run()
    finally:
        checker.close()
    code, line = verdict(outcomes)
    return code, [o.name for o in outcomes if o.status == "FAIL"]


def evolve(rig, run, *extra):
    argv = [sys.executable, "-m", "xdream.cli", "evolve", "--quiet", *extra]
    if not extra:
        argv += ["--generator", "pixel", "--set", "generator.size=16", "--optimizer", "genetic", "--population",
                 str(POPULATION), "--generations", str(GENERATIONS), "--seed", "4", "--set", 'responder.name="zmq"',
                 "--set", f'responder.target="{rig.endpoint}"', "--set", f"responder.repeats={REPEATS}",
                 "--set", "responder.heartbeat=0.2", "--set", 'responder.channels=["ch0"]', "--output", str(run)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until(condition, limit=120):
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError("timed out")
        time.sleep(0.01)


def requests_started(rig):
    order = []
    for t in rig.trials():
        if t["request_id"] not in order:
            order.append(t["request_id"])
    return order


def evolution(rig, run):
    """The run with a client crash (generation 1) and a rig crash (generation 2): (presentations, wrong scores)."""
    proc = evolve(rig, run)
    in_request = lambda k: (len(requests_started(rig)) > k and sum(  # noqa: E731
        t["request_id"] == requests_started(rig)[k] for t in rig.trials()) >= 5)
    wait_until(lambda: in_request(1))
    if proc.poll() is not None:
        raise RuntimeError("the run ended before the client could be killed mid-generation: raise --trial-ms")
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    resumed = evolve(rig, run, "--resume", str(run))
    wait_until(lambda: in_request(2) or resumed.poll() is not None)
    if resumed.poll() is None:
        rig.crash_and_restart()
    if resumed.wait(300) != 0:
        raise RuntimeError(resumed.stderr.read())
    from xdream.core import registry
    from xdream.images.io import to_uint8

    generator = registry.create("generator", "pixel", {"size": 16}, device="cpu")
    wrong = 0
    for g in range(GENERATIONS):
        with np.load(run / "generations" / f"gen_{g:04d}.npz") as data:
            with torch.no_grad():
                pixels = to_uint8(generator.decode(data["codes"])).astype(float)
            expected = np.round(pixels[:, 4:12, 4:12].mean(axis=(1, 2, 3)) / 255 * 32)  # the rig's ch0
            wrong += int(np.sum(data["scores"] != expected))
    return len(rig.trials()), wrong


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial-ms", type=float, default=100.0, help="the rigs' presentation time")
    args = parser.parse_args()
    needed = GENERATIONS * POPULATION * REPEATS
    print(f"{'rig':<22} {'presented':>9} {'re-presented':>12} {'wrong scores':>12}  rig check")
    with tempfile.TemporaryDirectory() as tmp:
        for defect in DEFECTS:
            folder = Path(tmp) / defect
            folder.mkdir()
            (folder / "check").mkdir()
            rig = Rig(defect, folder / "check", 10.0)
            try:
                code, failed = check(rig)
            finally:
                rig.stop()
            (folder / "run_rig").mkdir()
            rig = Rig(defect, folder / "run_rig", args.trial_ms)
            try:
                presented, wrong = evolution(rig, folder / "run")
            finally:
                rig.stop()
            said = "PASS" if code == 0 else f"exit {code}: FAIL " + ", ".join(failed)
            print(f"{defect:<22} {presented:>9} {presented - needed:>12} {wrong:>12}  {said}", flush=True)
    print(f"(the run needs {needed} presentations: {GENERATIONS} generations x {POPULATION} images x {REPEATS} repeats; "
          "client killed in generation 1 and resumed, rig killed and restarted in generation 2)")


if __name__ == "__main__":
    main()
