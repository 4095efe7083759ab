"""Which side of the link binds (docs/protocol.md §1, docs/rigs.md).

By default the rig binds and xdream connects. A rig PC that may only dial out (a firewall that
allows outbound connections only, as on many acquisition and stimulus PCs) has xdream bind
instead and dials in to it: ZeroMQ lets either side of a DEALER/ROUTER pair bind, and the
messages are the same. Used by the ``zmq`` responder (``responder.bind``) and ``xdream rig
check --bind``.
"""

from __future__ import annotations

import time

import zmq

from xdream.core.errors import ConfigError


def attach(sock: zmq.Socket, endpoint: str, bind: bool, wait: float = 2.0) -> None:
    """Connect ``sock`` to ``endpoint``, or bind it there when ``bind``. A rebind right after
    the previous socket on that port was closed retries for ``wait`` seconds (libzmq closes a
    listener in the background)."""
    if not bind:
        sock.connect(endpoint)
        return
    give_up = time.monotonic() + wait
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as e:
            if e.errno != zmq.EADDRINUSE or time.monotonic() > give_up:
                raise ConfigError(f"cannot bind {endpoint} for the rig to dial in: {e.strerror}; "
                                  "expected a free local tcp://ADDRESS:PORT (e.g. tcp://0.0.0.0:5555)") from None
            time.sleep(0.02)


def wait_for_peer(sock: zmq.Socket, seconds: float) -> bool:
    """For a bound DEALER: whether a rig is connected (a send would not block) within ``seconds``."""
    return bool(sock.poll(int(seconds * 1000), zmq.POLLOUT))
