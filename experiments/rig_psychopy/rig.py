"""An xdream-rig/1 rig (docs/protocol.md) that shows each request's images with PsychoPy and
answers with spike counts from the acquisition system.

Each image is put on the screen with a PsychoPy window; the onset is the flip (``win.flip()``
returns it) and is announced at that flip as an LSL marker ``"onset IMAGE_ID rREPEAT"`` on this
rig's marker outlet (``win.callOnFlip``, the PsychoPy idiom for flip-locked markers), so the
acquisition system (LabRecorder, an LSL-aware spike sorter) sees it on the shared LSL clock.
After a request's last presentation the rig reads the spike stream and its own markers back
through :mod:`rigkit` (an LSL inlet with LSL's clock correction), pairs each presentation with
its marker (``rigkit.counts.align``: a missing marker or a clock offset above 10 ms stops the
request with an ``internal`` error naming it, as does an acquisition clock that went back while
the rig read it, or a spike on a channel index beyond ``--channels``), counts spikes in each channel's window and
answers the trial records. Pings are answered between presentations; results (or the error a
request ended in) are kept by request id, so a resend is answered from the cache and never
presented again (in memory: a restarted rig forgets them).
It takes uint8 images (raw or png) and offers the content probe (docs/protocol.md §4.5): a
request with ``"probe": true`` is presented and aligned like any other, and each record then
carries the probe values of its image's pixels.

    python experiments/rig_psychopy/rig.py tcp://127.0.0.1:5555 --spike-source my-sorter   # a PsychoPy window
    python experiments/rig_psychopy/rig.py tcp://127.0.0.1:5555 --spike-source my-sorter --headless

``--headless`` keeps the timing and the markers but opens no window (onset = the time the
image would have flipped): for a dry run and for the tests. PsychoPy (``pip install psychopy``)
is imported only without it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np
import pylsl
import zmq

from rigkit.counts import AlignmentError, Presentation, SpikeCounter, Window, align, onsets_from_markers
from rigkit.sources.lsl import LslSource
from xdream.core.errors import ConfigError
from xdream.rig.probe import probe_values
from xdream.rig.protocol import ProtocolError, decode, decode_images, encode, error_reply


def request_payload(h: dict) -> tuple:
    """What a resend under the same request id must repeat (docs/protocol.md §5)."""
    return tuple(h.get(k, False) for k in ("image_ids", "encoding", "dtype", "shape", "repeats", "probe"))


class PsychoPyScreen:
    """Images in a PsychoPy window; :meth:`show` returns the onset flip's time on the LSL clock."""

    def __init__(self, on_s: float, off_s: float, fullscreen: bool = False):
        from psychopy import core, visual

        self.core, self.visual, self.on_s, self.off_s = core, visual, on_s, off_s
        self.win = visual.Window(fullscr=fullscreen, units="pix", color=(0, 0, 0), waitBlanking=True)

    def show(self, image: np.ndarray, marker) -> float:
        pixels = image.astype(np.float32) / 127.5 - 1.0  # PsychoPy's -1..1 colour space
        stim = self.visual.ImageStim(self.win, image=np.flipud(pixels), size=image.shape[1::-1], units="pix")
        stim.draw()
        stamp = {}
        self.win.callOnFlip(lambda: stamp.setdefault("t", marker()))  # the marker goes out at the flip
        self.win.flip()
        self.core.wait(self.on_s)
        self.win.flip()  # blank
        self.core.wait(self.off_s)
        return stamp["t"]

    def close(self) -> None:
        self.win.close()


class HeadlessScreen:
    """The same timing and markers without a window."""

    def __init__(self, on_s: float, off_s: float):
        self.on_s, self.off_s = on_s, off_s

    def show(self, image: np.ndarray, marker) -> float:
        t = marker()
        time.sleep(self.on_s + self.off_s)
        return t

    def close(self) -> None:
        pass


class Rig:
    def __init__(self, endpoint: str, screen, counter: SpikeCounter, spike_source: str, marker_id: str,
                 settle_s: float, seed: int = 0):
        self.screen, self.counter, self.settle_s = screen, counter, settle_s
        self.outlet = pylsl.StreamOutlet(pylsl.StreamInfo("xdream-markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                                                          "string", marker_id))
        self.source = LslSource(spike_source, marker_id, channels=counter.channels)
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sessions, self.cache, self.trials = set(), {}, 0
        self.random = random.Random(seed)
        self.current, self.progress = None, 0

    def serve(self) -> None:
        print(f"rig listening on {self.endpoint}", flush=True)
        while True:
            if self.sock.poll(200):
                job = self.handle(self.sock.recv_multipart())
                if job is not None:
                    self.present(*job)

    def reply(self, envelope, frames) -> None:
        self.sock.send_multipart(envelope + frames)

    def handle(self, frames):
        """Answer one message; a new request to present is returned (not while presenting)."""
        received = time.monotonic()  # a request's deadline runs from here: checking and decoding count (§6)
        envelope, body = frames[:1], frames[1:]
        if len(body) > 1 and body[0] == b"":  # a REQ client's empty delimiter
            envelope, body = frames[:2], frames[2:]
        try:
            msg = decode(body, expect=("hello", "ping", "present"))
        except ProtocolError as e:
            self.reply(envelope, error_reply(e.request_id, e.code, str(e)))
            return None
        h, rid = msg.header, msg.request_id
        if msg.type == "present" and h["dtype"] != "uint8":  # the codec takes float32 too; the screen shows 0..255
            self.reply(envelope, error_reply(rid, "unsupported", f"dtype {h['dtype']!r} not taken; allowed: uint8"))
            return None
        if msg.type == "hello":
            self.sessions.add(h["session"])
            self.reply(envelope, encode({"type": "welcome", "request_id": rid, "rig": "rig_psychopy",
                                         "encodings": ["raw", "png"], "dtypes": ["uint8"],
                                         "channels": self.counter.channels, "heartbeat_ms": 2000, "probe": True}))
        elif msg.type == "ping":
            state = ("presenting", self.progress) if self.current and self.current[0] == rid else \
                ("done", self.cache[rid][2]) if rid in self.cache else ("unknown", 0)
            if state[0] == "presenting":
                self.current[1][:] = envelope  # answer the newest sender
            self.reply(envelope, encode({"type": "pong", "request_id": rid, "state": state[0], "progress": state[1]}))
        elif h["session"] not in self.sessions:
            self.reply(envelope, error_reply(rid, "unknown-session", "send hello first"))
        elif rid in self.cache:
            payload, answer, _ = self.cache[rid]
            if payload != request_payload(h):
                self.reply(envelope, error_reply(rid, "bad-message", "request id was used for another request"))
            else:
                self.reply(envelope, answer)  # the result, or the error the request ended in
        elif self.current:
            if self.current[0] == rid and self.current[2] != request_payload(h):
                self.reply(envelope, error_reply(rid, "bad-message", "request id was used for another request"))
            elif self.current[0] == rid:
                self.current[1][:] = envelope
            else:
                self.reply(envelope, error_reply(rid, "busy", "presenting another request"))
        else:
            try:
                return msg, envelope, decode_images(msg), received
            except ProtocolError as e:
                self.reply(envelope, error_reply(rid, e.code, str(e)))
        return None

    def present(self, msg, envelope, images, received: float) -> None:
        h, rid = msg.header, msg.request_id
        deadline = received + h.get("deadline_ms", 600_000) / 1000
        self.current, self.progress = (rid, envelope, request_payload(h)), 0
        order = [(i, r) for r in range(h["repeats"]) for i in range(len(images))]
        self.random.shuffle(order)
        shown = []
        for i, r in order:
            if time.monotonic() > deadline:
                break
            image_id = h["image_ids"][i]
            text = f"onset {image_id} r{r}"
            onset = self.screen.show(images[i], lambda: self._mark(text))
            self.trials += 1
            shown.append(Presentation(image_id, r, self.trials, onset))
            self.progress = len(shown)
            while self.sock.poll(0):  # pings and resends between presentations
                self.handle(self.sock.recv_multipart())
        time.sleep(self.settle_s)  # the last window closes and its spikes arrive
        header = {"type": "result", "request_id": rid, "complete": len(shown) == len(order),
                  "channels": self.counter.channels}
        try:
            data = self.source.poll(0.05)  # ClockOffsetError if the acquisition clock went back (it restarted)
            since = shown[0].time - 1.0 if shown else np.inf  # this request's markers (the inlet keeps all)
            markers = [m for m in data.markers if m[0] >= since]
            onsets, _ = align(shown, onsets_from_markers(markers, "onset"), jitter=0.002, max_offset=0.01)
            header["records"] = self.counter.records(shown, onsets, data.spike_times(self.counter.channels))
            if h.get("probe"):  # the content probe (§4.5): each record carries its image's probe values, valid
                index = {image_id: i for i, image_id in enumerate(h["image_ids"])}
                for r in header["records"]:
                    r["values"] = probe_values(images[index[r["image_id"]]], len(self.counter.channels))
                    r["valid"] = True
            answer = encode(header)
        except (AlignmentError, ConfigError) as e:  # ConfigError: a spike on a channel index beyond --channels
            answer = error_reply(rid, "internal", f"spike counts unavailable: {e}")
        self.cache[rid] = (request_payload(h), answer, len(shown))  # a resend never presents again (§5)
        self.current = None
        self.reply(envelope, answer)

    def _mark(self, text: str) -> float:
        t = pylsl.local_clock()
        self.outlet.push_sample([text], t)
        return t


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("endpoint", help="where the rig binds, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--spike-source", required=True, help="source_id of the LSL spike stream (int32 channel indices)")
    p.add_argument("--marker-id", default="xdream-rig-psychopy-markers", help="source_id of this rig's marker outlet")
    p.add_argument("--channels", default="ch0", help="comma-separated channel names, in the spike stream's index order")
    p.add_argument("--on-ms", type=float, default=100.0)
    p.add_argument("--off-ms", type=float, default=200.0)
    p.add_argument("--latency-ms", type=float, default=50.0, help="response window start after the onset")
    p.add_argument("--window-ms", type=float, default=100.0, help="response window width")
    p.add_argument("--headless", action="store_true", help="no window: the same timing and markers")
    p.add_argument("--fullscreen", action="store_true")
    args = p.parse_args(argv)
    window = Window(args.latency_ms / 1000, args.window_ms / 1000)
    counter = SpikeCounter({c: window for c in args.channels.split(",")})
    screen = HeadlessScreen(args.on_ms / 1000, args.off_ms / 1000) if args.headless else \
        PsychoPyScreen(args.on_ms / 1000, args.off_ms / 1000, args.fullscreen)
    rig = Rig(args.endpoint, screen, counter, args.spike_source, args.marker_id,
              settle_s=(args.latency_ms + args.window_ms) / 1000 + 0.2)
    try:
        rig.serve()
    finally:
        screen.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
