"""Intan RHX's TCP spike data output (RHX software, "Remote TCP Control": the spike data
port): a stream of 14-byte little-endian chunks, each a spike: the magic number 0x3ae2710f
(uint32), the native channel name (5 ASCII characters, e.g. ``A-010``), the timestamp (uint32,
samples since the run started) and the spike id (uint8). Times are ``timestamp /
sample_rate``. Onsets come from elsewhere (a photodiode trace, the stimulus program's flips
aligned with :func:`rigkit.counts.align`): this socket carries spikes only."""

from __future__ import annotations

import socket
import struct
import time

from rigkit.acquired import Acquired
from xdream.core.errors import XDreamError

MAGIC = 0x3AE2710F
CHUNK = struct.Struct("<I5sIB")


class IntanStreamError(XDreamError):
    """The spike socket sent something that is not RHX spike chunks."""


class IntanSpikeSource:
    def __init__(self, host: str, port: int, sample_rate: float, timeout: float = 5.0):
        self.sample_rate = float(sample_rate)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.data = Acquired()

    def poll(self, seconds: float) -> Acquired:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got = self.sock.recv(65536)
            except socket.timeout:
                break
            if not got:
                break  # the server closed the connection
            self.buffer += got
            whole = len(self.buffer) - len(self.buffer) % CHUNK.size
            for offset in range(0, whole, CHUNK.size):
                magic, name, stamp, _spike_id = CHUNK.unpack_from(self.buffer, offset)
                if magic != MAGIC:
                    raise IntanStreamError(f"spike chunk at byte {offset} has magic number {magic:#010x}; "
                                           f"expected {MAGIC:#010x} (is this RHX's spike data port?)")
                self.data.add_spike(name.decode("ascii", "replace"), stamp / self.sample_rate)
            self.buffer = self.buffer[whole:]
        return self.data

    def close(self) -> None:
        self.sock.close()
