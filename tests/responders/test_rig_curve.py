"""CURVE on the rig link: a known client works, an unknown client is refused, and the bytes on
the wire (recorded by a TCP relay between client and rig) are not plaintext."""

import json
import socket
import stat
import threading

import numpy as np
import pytest
import torch
import zmq.auth

from responders.rig_sim import RigSimulator
from responders.torch_unit import TorchUnit
from responders.zmq_client import RigUnavailableError, ZmqResponder
from xdream.cli import main
from xdream.core.errors import ConfigError

TARGET = "efficientnet_lite0:_blocks.2:5"


class Relay:
    """A loopback TCP relay that forwards to ``port`` and records every byte it forwards."""

    def __init__(self, port):
        self.upstream, self.seen, self.stop = port, bytearray(), threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                a, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:  # closed
                return
            b = socket.create_connection(("127.0.0.1", self.upstream))
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while data := src.recv(65536):
                self.seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.server.close()


@pytest.fixture
def keys(tmp_path, capsys):
    for name in ("rig", "lab", "stranger"):
        assert main(["rig", "keygen", name, "--dir", str(tmp_path / "keys")]) == 0
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "lab.key").write_bytes((tmp_path / "keys" / "lab.key").read_bytes())
    capsys.readouterr()
    return tmp_path / "keys", allow


def serve(sim, stop):
    while not stop.is_set():
        sim.serve(0.1)


@pytest.mark.parametrize("secure", [True, False])
def test_curve_link(tmp_path, keys, secure):
    folder, allow = keys
    curve = {"curve_secret": folder / "rig.key_secret", "allow_dir": allow} if secure else {}
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log", **curve)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(sim, stop), daemon=True)
    thread.start()
    relay = Relay(int(sim.endpoint.rsplit(":", 1)[1]))
    client_keys = ({"server_key": str(folder / "rig.key"), "client_key": str(folder / "lab.key_secret")}
                   if secure else {})
    try:
        images = torch.rand(3, 3, 8, 8)
        with ZmqResponder(f"tcp://127.0.0.1:{relay.port}", heartbeat=0.2, **client_keys) as client:
            scores = client.respond(images)
        np.testing.assert_allclose(scores, TorchUnit(TARGET, input_size=64).respond(
            torch.round(images * 255) / 255), rtol=1e-5, atol=1e-5)
        plaintext = b"xdream-rig/1" in relay.seen or b'"present"' in relay.seen
        assert plaintext is not secure  # encrypted with CURVE, readable without (the relay works)
        if secure:  # a client whose key is not allowed: told the link may have refused it; the rig logs it
            with pytest.raises(RigUnavailableError, match="no rig answers.*the rig refused this client's key \\(CURVE\\)"):
                ZmqResponder(sim.endpoint, heartbeat=0.1, liveness=2, timeout=1.0,
                             server_key=str(folder / "rig.key"), client_key=str(folder / "stranger.key_secret"))
            stranger = zmq.auth.load_certificate(folder / "stranger.key")[0].decode()
            refused = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()
                       if '"refused"' in line]
            assert refused and {r["peer"] for r in refused} == {stranger}
    finally:
        relay.close()
        stop.set()
        thread.join(10)
        sim.close()


def test_bad_key_options(tmp_path, keys):
    folder, allow = keys
    with pytest.raises(ConfigError, match="needs both server_key"):
        ZmqResponder("tcp://127.0.0.1:1", server_key=str(folder / "rig.key"))
    with pytest.raises(ConfigError, match="holds no secret key"):
        ZmqResponder("tcp://127.0.0.1:1", server_key=str(folder / "rig.key"), client_key=str(folder / "lab.key"))
    with pytest.raises(ConfigError, match="not a CURVE key file"):
        ZmqResponder("tcp://127.0.0.1:1", server_key=str(tmp_path / "nope.key"),
                     client_key=str(folder / "lab.key_secret"))
    assert main(["rig", "keygen", "lab", "--dir", str(folder)]) == 2  # never overwrites a key


@pytest.mark.parametrize("where", ["a-file", "a-file/keys"])
def test_keygen_into_a_file_is_one_line(tmp_path, capsys, where):
    """--dir naming a file (or a folder under one) was a FileExistsError traceback."""
    (tmp_path / "a-file").write_text("notes")
    assert main(["rig", "keygen", "lab", "--dir", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    assert f"--dir {str(tmp_path / where)!r}" in err and "give a folder" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


FULL_TMPFS = 'mount -t tmpfs -o size=8k tmpfs "$0" && head -c 8192 /dev/zero > "$0/fill"; "$@"; echo "rc=$?"; ls -A "$0"'


def test_keygen_on_a_full_disk_is_one_line_and_leaves_no_key_file(private_tmpfs, tmp_path, xdream_cmd):
    """On a full disk (a tiny tmpfs, in a private mount namespace) keygen was an OSError traceback
    that left an empty NAME.key behind; it is one line naming the file, and no key file is left."""
    import subprocess

    result = subprocess.run(["unshare", "-m", "sh", "-c", FULL_TMPFS, str(tmp_path), *xdream_cmd, "rig", "keygen",
                             "lab", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert result.stdout.splitlines()[-2:] == ["rc=2", "fill"], result.stdout  # nothing but the filler file
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        f"xdream: error: cannot write {tmp_path}/lab.key: No space left on device"), result.stderr


def test_secret_keys_are_owner_only(keys):
    folder, _ = keys
    for name in ("rig", "lab", "stranger"):
        assert stat.S_IMODE((folder / f"{name}.key_secret").stat().st_mode) == 0o600
        assert stat.S_IMODE((folder / f"{name}.key").stat().st_mode) == 0o644


@pytest.mark.parametrize("rig_curve,client,words", [
    (True, None, "the rig's link is encrypted (CURVE) but this client is plaintext: set server_key"),
    (True, ("stranger.key", "lab.key_secret"), "server_key is not the rig's public key"),
    (True, ("rig.key", "stranger.key_secret"), "the rig refused this client's key (CURVE)"),
    (False, ("rig.key", "lab.key_secret"), "the rig's link is plaintext but this client encrypts (CURVE)"),
])
def test_a_failed_handshake_says_which_side_is_wrong(tmp_path, keys, rig_curve, client, words):
    folder, allow = keys
    curve = {"curve_secret": folder / "rig.key_secret", "allow_dir": allow} if rig_curve else {}
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log", **curve)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(sim, stop), daemon=True)
    thread.start()
    options = {"server_key": str(folder / client[0]), "client_key": str(folder / client[1])} if client else {}
    try:
        with pytest.raises(RigUnavailableError) as raised:
            ZmqResponder(sim.endpoint, heartbeat=0.1, liveness=2, timeout=1.0, **options)
        assert words in str(raised.value) and "\n" not in str(raised.value)
    finally:
        stop.set()
        thread.join(10)
        sim.close()


@pytest.mark.parametrize("events, rig, words", [
    (["PROTOCOL", "NO_DETAIL"], None, "plaintext but this client encrypts"),
    (["NO_DETAIL", "PROTOCOL", "NO_DETAIL"], None, "plaintext but this client encrypts"),
    (["NO_DETAIL"], None, "server_key is not the rig's public key"),
    (["AUTH", "NO_DETAIL"], None, "the rig refused this client's key"),
    (["PROTOCOL", "SUCCEEDED"], None, None),
    (["NO_DETAIL"], "NULL", "plaintext but this client encrypts"),
    ([], "NULL", "plaintext but this client encrypts"),
    (["NO_DETAIL"], "CURVE", "server_key is not the rig's public key"),
    ([], "PLAIN", "uses the PLAIN mechanism"),
])
def test_a_precise_handshake_report_is_not_replaced_by_a_vague_one(events, rig, words):
    """libzmq may end a plaintext/CURVE mismatch in a failure without detail (the rig closed
    first): the rig's greeted mechanism, when known, settles it; otherwise the diagnosis keeps
    the precise report, whatever the order (events sent in libzmq's monitor format over a real
    inproc pair)."""
    import struct

    from xdream.rig.keys import handshake_failure

    context = zmq.Context()
    reader, writer = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    try:
        reader.bind("inproc://monitor")
        writer.connect("inproc://monitor")
        for name in events:
            event = getattr(zmq, "EVENT_HANDSHAKE_" + ("" if name == "SUCCEEDED" else "FAILED_") + name)
            writer.send_multipart([struct.pack("=HI", event, 0), b"tcp://127.0.0.1:1"])
        reason = handshake_failure(reader, encrypted=True, wait=0.2, rig_mechanism=rig)
        assert reason is None if words is None else words in reason, reason
    finally:
        reader.close(0)
        writer.close(0)
        context.term()


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("curve", [False, True])
def test_the_rigs_mechanism_is_read_from_its_greeting(tmp_path, keys, transport, curve):
    """The mechanism of real libzmq ROUTERs, read as often as a client would retry its hello,
    is right every time (libzmq's monitor may report a mismatch only without detail)."""
    from xdream.rig.keys import greeted_mechanism, secure_server

    context = zmq.Context()
    rig = context.socket(zmq.ROUTER)
    auth = secure_server(context, rig, keys[0] / "rig.key_secret", keys[1]) if curve else None
    try:
        rig.bind("tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{tmp_path}/rig")
        endpoint = rig.getsockopt_string(zmq.LAST_ENDPOINT)
        assert [greeted_mechanism(endpoint) for _ in range(20)] == ["CURVE" if curve else "NULL"] * 20
    finally:
        rig.close(0)
        if auth is not None:
            auth.stop()
        context.term()


def test_a_listener_that_does_not_greet_has_no_mechanism():
    """Nothing listening, a server that is not ZeroMQ, one that stays silent, and an address
    that is no endpoint: None, within the timeout, never an exception."""
    from xdream.rig.keys import greeted_mechanism

    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    web, silent = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))

    def answer_http():
        conn, _ = web.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + bytes(64))

    threading.Thread(target=answer_http, daemon=True).start()
    try:
        assert greeted_mechanism(f"tcp://127.0.0.1:{port}") is None
        assert greeted_mechanism(f"tcp://127.0.0.1:{web.getsockname()[1]}") is None
        assert greeted_mechanism(f"tcp://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2) is None
        assert greeted_mechanism("tcp://127.0.0.1:notaport") is None
        assert greeted_mechanism("inproc://rig") is None
    finally:
        web.close()
        silent.close()
