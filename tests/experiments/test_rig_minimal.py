"""experiments/rig_minimal: the standalone pyzmq+numpy rig works with the `zmq` responder."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from responders.zmq_client import ZmqResponder
from xdream.images.io import to_uint8
from xdream.rig.protocol import decode, encode

RIG = Path(__file__).resolve().parents[2] / "experiments" / "rig_minimal" / "rig.py"


def test_minimal_rig_serves_the_zmq_responder():
    lines = RIG.read_text().splitlines()
    imported = {line.split()[1].split(".")[0] for line in lines if line.startswith(("import ", "from "))}
    assert len(lines) <= 300 and imported == {"json", "re", "sys", "time", "numpy", "zmq"}  # pyzmq + numpy only
    proc = subprocess.Popen([sys.executable, str(RIG), "tcp://127.0.0.1:*"], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = proc.stdout.readline().split()[-1]
        images = torch.rand(6, 3, 20, 20)
        with ZmqResponder(endpoint, repeats=2, heartbeat=0.2, channels=["ch0"]) as client:
            scores = client.respond(images)
            records = client.last_records
        pixels = np.stack([to_uint8(im) for im in images]).astype(float)
        expected = np.round(pixels[:, 5:15, 5:15].mean(axis=(1, 2, 3)) / 255 * 32)  # its stand-in neuron, ch0
        np.testing.assert_array_equal(scores, expected)
        assert sorted((r["image_index"], r["repeat"]) for r in records) == [(i, k) for i in range(6) for k in (0, 1)]
        import zmq

        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        sock.send_multipart([b"not json"])
        assert decode(sock.recv_multipart()).header["code"] == "bad-message"
        sock.send_multipart(encode({"type": "present", "session": "never-greeted", "request_id": "r",
                                    "image_ids": ["a"], "encoding": "raw", "dtype": "uint8", "shape": [2, 2, 3],
                                    "repeats": 1}, [bytes(12)]))
        assert decode(sock.recv_multipart()).header["code"] == "unknown-session"
        context.destroy(linger=0)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
