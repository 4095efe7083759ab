"""xdream.rig.attach: the client connects, or binds for a rig that dials in; a port that stays
taken is a one-line ConfigError naming the endpoint."""

import pytest
import zmq

from xdream.core.errors import ConfigError
from xdream.rig.attach import attach, wait_for_peer


def test_bind_mode_takes_a_dialling_peer_and_names_a_busy_port():
    context = zmq.Context()
    try:
        client = context.socket(zmq.DEALER)
        client.setsockopt(zmq.LINGER, 0)
        attach(client, "tcp://127.0.0.1:*", bind=True)
        endpoint = client.getsockopt_string(zmq.LAST_ENDPOINT)
        assert not wait_for_peer(client, 0.05)  # nobody dialled in yet
        rig = context.socket(zmq.ROUTER)
        rig.setsockopt(zmq.LINGER, 0)
        attach(rig, endpoint, bind=False)  # the rig dials in
        assert wait_for_peer(client, 5.0)
        client.send(b"hello")
        identity, body = rig.recv_multipart()
        rig.send_multipart([identity, b"welcome"])
        assert body == b"hello" and client.recv() == b"welcome"
        other = context.socket(zmq.DEALER)
        other.setsockopt(zmq.LINGER, 0)
        with pytest.raises(ConfigError, match=f"cannot bind {endpoint} for the rig to dial in"):
            attach(other, endpoint, bind=True, wait=0.2)
        for sock in (client, rig, other):
            sock.close(linger=0)
    finally:
        context.term()
