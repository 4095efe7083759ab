"""Free loopback ports for rigs that are killed and started again on the same port.

A port the kernel hands out (``bind(("127.0.0.1", 0))``) lies in its ephemeral range, the range it
also draws the source ports of outgoing connections from. While a rig is down between a kill and
its restart, the client keeps reconnecting to the rig's port; any outgoing connection may then be
given that port as its own source port, and a connect to a closed port of the ephemeral range can
even connect to itself (TCP simultaneous open). Either way the restarted rig finds its port taken
("Address already in use"). Ports below the ephemeral range are never handed out that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000  # below this lie well-known and registered services


def _unassigned_range() -> range:
    """Ports outside the kernel's ephemeral range (Linux; elsewhere the IANA dynamic range's complement)."""
    low, high = 49152, 65535
    if EPHEMERAL_RANGE.exists():
        low, high = map(int, EPHEMERAL_RANGE.read_text().split())
    return range(LOWEST, low) if low - LOWEST >= 1000 else range(high + 1, 65536)


def free_loopback_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """``count`` distinct loopback TCP ports, each free now and outside the ephemeral range."""
    rng = rng or random.Random()
    candidates = _unassigned_range()
    ports: list[int] = []
    for _ in range(100 * count):
        port = rng.choice(candidates)
        if port in ports:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise OSError(f"found only {len(ports)} of {count} free loopback ports in {candidates.start}-{candidates.stop - 1}")


def free_loopback_port(rng: random.Random | None = None) -> int:
    """One free loopback TCP port outside the ephemeral range (see the module's docstring)."""
    return free_loopback_ports(1, rng)[0]
