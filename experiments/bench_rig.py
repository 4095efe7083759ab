"""Rig-link transport cost on loopback, measured in one run.

(a) Transport overhead per generation: 40 images of 256x256x3 (uint8, 7.9 MB) through the `zmq`
    responder to a rig process whose neuron costs nothing (all zeros) — conversion to uint8,
    framing, sending, the rig's validation and decoding, the 40-record result and its scoring —
    as a ratio to the time the generator takes to decode the same 40 images (Fourier, 256 px).
(b) The same 40 frames sent with raw pyzmq (DEALER -> ROUTER in another process, which answers
    with a frame as large as the rig's result) in the same run: transport / raw is what the
    protocol costs over the socket itself (goal <= 2). The transport figure includes what a run
    writes: the request journalled (fsync) before sending and the trial records (fsync) after;
    a second client with no run directory gives the link alone. The floor printed beside it is
    raw + the uint8 conversion + two fsyncs of this disk, each timed alone in the same run.
    The client's CPU time (its calling thread) is printed beside the transport: on a shared
    machine it varies less than the wall time, which includes waiting for a core.
(c) Round trip of an empty request (ping -> pong), median over many.

    python experiments/bench_rig.py [--generations 20] [--pings 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time

import numpy as np
import torch
import zmq

from xdream.core import registry
from xdream.core.allocator import retain_freed_memory
from xdream.images.io import to_uint8
from xdream.core.responder import Responder
from xdream.rig.protocol import decode, encode, image_frames


class NullNeuron(Responder):
    """A neuron that costs nothing, so the rig's time is all transport and protocol."""

    def respond(self, images):
        return np.zeros(len(images))


def serve(endpoint_queue, log_path, stop_event):
    from responders.rig_sim import RigSimulator

    class NullRig(RigSimulator):
        """The simulator minus the neuron's input conversion (float copies of the pixels): the
        images are still received, validated and decoded, but nothing is scored."""

        def _respond(self, images, dtype):
            return np.zeros(len(images))

    retain_freed_memory()  # as `xdream rig simulate` runs
    sim = NullRig(NullNeuron(), endpoint="tcp://127.0.0.1:*", log=log_path)
    endpoint_queue.put(sim.endpoint)
    while not stop_event.is_set():
        sim.serve(0.2)
    sim.close()


def serve_raw(endpoint_queue, reply_bytes, stop_event):
    """A bare ROUTER: takes each message whole and answers one frame of ``reply_bytes`` bytes."""
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:*")
    endpoint_queue.put(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    reply = b"x" * reply_bytes
    while not stop_event.is_set():
        if sock.poll(200):
            identity, *_ = sock.recv_multipart(copy=False)
            sock.send_multipart([identity, reply])
    context.destroy(linger=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--encoding", default="raw", choices=["raw", "png"])
    args = parser.parse_args()
    retain_freed_memory()  # as the xdream command runs

    from responders.zmq_client import ZmqResponder

    generator = registry.create("generator", "fourier", {"size": 256}, device="cpu")
    codes = generator.sample(40, np.random.default_rng(0))
    with torch.no_grad():
        generator.decode(codes)  # warm-up
        decode_times = []
        for _ in range(args.generations):
            start = time.perf_counter()
            images = generator.decode(codes)
            decode_times.append(time.perf_counter() - start)

    ctx = mp.get_context("spawn")
    endpoints, stop = ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory(dir=".") as tmp:  # on disk (not a tmpfs /tmp): fsync costs what it costs
        rig = ctx.Process(target=serve, args=(endpoints, f"{tmp}/rig-log.jsonl", stop))
        rig.start()
        endpoint = endpoints.get(timeout=120)
        client = ZmqResponder(endpoint, encoding=args.encoding)  # as in a run: journal and trial records
        bare = ZmqResponder(endpoint, encoding=args.encoding)  # no run directory: the link alone
        client.prepare(tmp, 0)
        client.respond(images), bare.respond(images)  # warm-up
        transport, link, cpu, steps = [], [], [], {"to_uint8": [], "frames": [], "fsync": []}
        for g in range(args.generations):
            start = time.perf_counter()
            bare.respond(images)
            link.append(time.perf_counter() - start)
            client.prepare(tmp, g + 1)
            start, start_cpu = time.perf_counter(), time.thread_time()
            client.respond(images)
            transport.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            start = time.perf_counter()
            arrays = to_uint8(images)
            steps["to_uint8"].append(time.perf_counter() - start)
            start = time.perf_counter()
            frames = image_frames(arrays, args.encoding)
            steps["frames"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with open(f"{tmp}/fsync-probe.jsonl", "a") as f:  # what one journal line costs on this disk
                f.write("x" * 200 + "\n")
                f.flush()
                os.fsync(f.fileno())
            steps["fsync"].append(time.perf_counter() - start)
        result_bytes = len(client.last_records) * 160
        client.close(), bare.close()

        raw_rig = ctx.Process(target=serve_raw, args=(endpoints, result_bytes, stop))
        raw_rig.start()
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.connect(endpoints.get(timeout=120))
        header = encode({"type": "ping", "session": "bench", "request_id": "raw"})
        raw = []
        for _ in range(args.generations + 1):  # the first is a warm-up
            start = time.perf_counter()
            sock.send_multipart([*header, *frames], copy=False)
            sock.recv_multipart()
            raw.append(time.perf_counter() - start)
        raw = raw[1:]
        context.destroy(linger=0)

        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.connect(endpoint)
        ping = encode({"type": "ping", "session": "bench", "request_id": "p"})
        round_trips = []
        for _ in range(args.pings):
            start = time.perf_counter()
            sock.send_multipart(ping)
            decode(sock.recv_multipart())
            round_trips.append(time.perf_counter() - start)
        context.destroy(linger=0)
        stop.set()
        rig.join(30)
        raw_rig.join(30)

    t, d, r = statistics.median(transport), statistics.median(decode_times), statistics.median(raw)
    k = statistics.median(link)
    u, fs = statistics.median(steps["to_uint8"]), statistics.median(steps["fsync"])
    floor = r + u + 2 * fs
    print(f"images per generation      40 x 256x256x3 uint8 = {40 * 256 * 256 * 3 / 1e6:.1f} MB ({args.encoding})")
    print(f"transport per generation   {t * 1e3:8.1f} ms (median of {args.generations}; round trip incl. rig decoding; "
          f"the client's own CPU time {statistics.median(cpu) * 1e3:.1f} ms)")
    print(f"generator decode (fourier) {d * 1e3:8.1f} ms (median of {args.generations})")
    print(f"transport / decode ratio   {t / d:8.2f}")
    print(f"raw pyzmq send+recv        {r * 1e3:8.1f} ms (median of {args.generations}; the same 40 frames, "
          "a result-sized reply)")
    print(f"transport / raw ratio      {t / r:8.2f} (goal <= 2; link alone, no run files: {k * 1e3:.1f} ms, "
          f"{k / r:.2f})")
    print(f"  of which: uint8 batch {u * 1e3:.1f} ms, frames {statistics.median(steps['frames']) * 1e3:.1f} ms, "
          f"one fsync {fs * 1e3:.1f} ms (each timed alone)")
    print(f"  floor: raw + uint8 + 2 fsyncs = {floor * 1e3:.1f} ms ({floor / r:.2f} x raw); transport / floor "
          f"{t / floor:.2f}")
    print(f"empty request round trip   {statistics.median(round_trips) * 1e6:8.0f} us (median of {args.pings}; "
          f"p99 {np.percentile(round_trips, 99) * 1e6:.0f} us)")


if __name__ == "__main__":
    main()
