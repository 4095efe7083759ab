"""Loopback ports for rigs restarted on the same port: distinct, free, and never ones the kernel
would hand to an outgoing connection (xdream.rig.ports)."""

import random
import socket

from xdream.rig.ports import EPHEMERAL_RANGE, free_loopback_port, free_loopback_ports


def test_ports_are_distinct_free_and_outside_the_ephemeral_range():
    ports = free_loopback_ports(40, random.Random(0))
    assert len(set(ports)) == 40
    if EPHEMERAL_RANGE.exists():
        low, high = map(int, EPHEMERAL_RANGE.read_text().split())
        assert not any(low <= port <= high for port in ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_taken_port_is_never_returned():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_loopback_port(random.Random(1))))
        port = taken.getsockname()[1]
        assert port not in free_loopback_ports(200, random.Random(1))
