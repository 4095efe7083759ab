"""The Open Ephys GUI's Event Broadcaster plugin in JSON format: a ZeroMQ PUB socket (default
port 5557) sending two-frame messages, an envelope and a JSON object with ``event_type``
``"spike"`` (``electrode``, ``sample_number``, ``sample_rate``, ``sorted_id``) or ``"ttl"``
(``line``, ``state``, ``sample_number``, ``sample_rate``). The format is the one the official
``open-ephys-python-tools`` EventListener reads (its streaming/README.md); this reader polls it
instead of blocking in a callback loop, and does without that package's pandas and h5py.

Times are ``sample_number / sample_rate`` (the acquisition clock). A rising TTL edge on any
line becomes the marker ``"ttl LINE"``; a spike of electrode E with sorted unit U > 0 counts
on channel ``"E"`` and on ``"E#U"``."""

from __future__ import annotations

import json
import time

import zmq

from rigkit.acquired import Acquired


class OpenEphysSource:
    def __init__(self, endpoint: str = "tcp://127.0.0.1:5557"):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(endpoint)
        self.data = Acquired()
        self.skipped = 0  # messages that are not a JSON event

    def poll(self, seconds: float) -> Acquired:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if not self.socket.poll(int(left * 1000) + 1):
                continue
            parts = self.socket.recv_multipart()
            try:
                event = json.loads(parts[-1])
                t = event["sample_number"] / event["sample_rate"]
                kind = event["event_type"]
            except (ValueError, KeyError, TypeError, ZeroDivisionError):
                self.skipped += 1
                continue
            if kind == "spike":
                self.data.add_spike(str(event["electrode"]), t)
                if event.get("sorted_id", 0):
                    self.data.add_spike(f"{event['electrode']}#{event['sorted_id']}", t)
            elif kind == "ttl" and event.get("state"):
                self.data.add_marker(t, f"ttl {event['line']}")
        return self.data

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()
