"""CURVE keys for the rig link: encryption plus client authentication.

``xdream rig keygen NAME --dir DIR`` writes ``DIR/NAME.key`` (public, give it to the other side)
and ``DIR/NAME.key_secret`` (keep it; written with mode 0600). The rig loads its secret file and an allow-list
directory of client public keys; the client loads its own secret file and the rig's public
key. A client whose key is not in the allow-list never gets past the handshake.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Callable

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from xdream.core.errors import ConfigError, RunDirError
from xdream.rig.usage import OneLineParser


def load_keypair(path: str | Path, what: str) -> tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` file; a missing or public-only file is a ConfigError."""
    path = Path(path)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what} {str(path)!r} is not a CURVE key file ({type(e).__name__}); "
                          "create one with `xdream rig keygen NAME`") from None
    if secret is None:
        raise ConfigError(f"{what} {str(path)!r} holds no secret key; give the NAME.key_secret file")
    return public, secret


def load_public(path: str | Path, what: str) -> bytes:
    """The public key of a ``.key`` (or ``.key_secret``) file."""
    path = Path(path)
    try:
        return zmq.auth.load_certificate(path)[0]
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what} {str(path)!r} is not a CURVE key file ({type(e).__name__}); "
                          "create one with `xdream rig keygen NAME`") from None


def secure_client(sock: zmq.Socket, client_secret: str | Path, server_public: str | Path) -> None:
    """Make ``sock`` (not yet connected) a CURVE client of the rig with that public key."""
    public, secret = load_keypair(client_secret, "client key")
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.curve_serverkey = load_public(server_public, "rig public key")


# The start of a ZMTP 3 greeting (rfc.zeromq.org/spec/23): signature and major version 3. A
# libzmq peer answers it with its whole greeting and waits for the rest of ours.
_GREETING_START = b"\xff" + bytes(8) + b"\x7f" + b"\x03"


def greeted_mechanism(endpoint: str, timeout: float = 1.0) -> str | None:
    """The security mechanism ("NULL" for plaintext, "CURVE", ...) that the ZeroMQ peer
    listening at a ``tcp://`` or ``ipc://`` endpoint announces in its ZMTP 3 greeting, or None
    when nothing there greets. Read over a plain socket that sends only the start of a greeting,
    never a mechanism: the peer has nothing to refuse, so it cannot close before its greeting
    is read, as it can for a libzmq client of the other mechanism (whose report of the mismatch
    is then a failure without detail)."""
    scheme, _, address = endpoint.partition("://")
    try:
        if scheme == "tcp":
            host, _, port = address.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout)
        elif scheme == "ipc":
            sock = socket.socket(socket.AF_UNIX)
        else:
            return None
        with sock:
            if scheme == "ipc":
                sock.settimeout(timeout)
                sock.connect("\0" + address[1:] if address.startswith("@") else address)
            sock.sendall(_GREETING_START)
            greeting = b""
            while len(greeting) < 64 and (chunk := sock.recv(64 - len(greeting))):
                greeting += chunk
    except (OSError, ValueError):  # nothing listens, a bad address, silence
        return None
    if len(greeting) < 64 or greeting[0] != 0xFF or not greeting[9] & 1 or greeting[10] < 3:
        return None  # not a ZMTP 3 peer
    return greeting[12:32].rstrip(b"\0").decode("ascii", "replace")


def handshake_failure(monitor: zmq.Socket, encrypted: bool, wait: float = 0.0,
                      rig_mechanism: str | None = None) -> str | None:
    """What went wrong in a client socket's ZMTP handshakes, in words, or None: from the
    rig's mechanism when known (:func:`greeted_mechanism`), else from the socket's monitor
    (``socket.get_monitor_socket()``), waiting ``wait`` seconds for a first event (on a loaded
    machine libzmq's report can trail the silence it explains). libzmq reports a plaintext/CURVE
    mismatch as a protocol error (mechanism mismatch), a key refused by the rig's allow-list as
    an authentication failure (ZAP status 400), and a CURVE hello the rig cannot decrypt (a
    server key that is not the rig's) as a failure without detail; a mismatch can also end in a
    failure without detail (the rig closed before its greeting was read), so that weakest
    report never replaces a precise one."""
    from zmq.utils.monitor import recv_monitor_message

    mismatch = ("the rig's link is plaintext but this client encrypts (CURVE): leave server_key and client_key "
                "unset, or start the rig with CURVE" if encrypted else
                "the rig's link is encrypted (CURVE) but this client is plaintext: set server_key (the rig's "
                "public NAME.key) and client_key (this client's NAME.key_secret)")
    if rig_mechanism in ("NULL", "CURVE") and (rig_mechanism == "CURVE") != encrypted:
        return mismatch
    if rig_mechanism not in (None, "NULL", "CURVE"):
        return f"the rig's link uses the {rig_mechanism} mechanism; xdream speaks plaintext (NULL) or CURVE"
    reason, timeout = None, int(wait * 1000)
    while monitor.poll(timeout):
        timeout = 0
        event = recv_monitor_message(monitor)["event"]
        if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            reason = mismatch
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            reason = ("the rig refused this client's key (CURVE): add this client's public NAME.key to the rig's "
                      "allow-list")
        elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and encrypted and reason is None:
            reason = ("the rig dropped the encrypted handshake: server_key is not the rig's public key (check that "
                      "it is the rig's NAME.key)")
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            reason = None
    return reason


class RefusalReportingAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP authenticator thread that also reports each refused CURVE handshake
    (``on_refused(client public key in Z85, reason)``): the refused client only sees silence,
    so the rig operator must be told."""

    def __init__(self, context: zmq.Context, on_refused: Callable[[str, str], None] | None = None):
        super().__init__(context)
        self.on_refused = on_refused

    async def _authenticate_curve(self, domain, client_key):
        allowed, reason = await super()._authenticate_curve(domain, client_key)
        if not allowed and self.on_refused is not None:
            key = z85.encode(client_key).decode("ascii") if len(client_key) == 32 else repr(client_key)
            self.on_refused(key, reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason))
        return allowed, reason


def secure_server(context: zmq.Context, sock: zmq.Socket, server_secret: str | Path, allow_dir: str | Path,
                  on_refused: Callable[[str, str], None] | None = None):
    """Make ``sock`` (not yet bound) a CURVE server accepting only the public keys in
    ``allow_dir``; ``on_refused(key, reason)`` hears of every refused client. Returns the
    authenticator thread (stop it when done)."""
    allow = Path(allow_dir)
    if not allow.is_dir():
        raise ConfigError(f"allow-list {str(allow)!r} is not a directory of client .key files")
    public, secret = load_keypair(server_secret, "rig key")
    auth = RefusalReportingAuthenticator(context, on_refused)
    auth.start()
    auth.configure_curve(domain="*", location=str(allow))
    sock.curve_publickey, sock.curve_secretkey, sock.curve_server = public, secret, True
    return auth


def main(argv: list[str]) -> int:
    """``xdream rig keygen NAME [--dir DIR]``."""
    parser = OneLineParser(prog="xdream rig keygen", description="Create a CURVE key pair.")
    parser.add_argument("name", help="key name: writes NAME.key (public) and NAME.key_secret")
    parser.add_argument("--dir", default=".", help="directory for the key files (default: the current one)")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    if not args.name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"key name {args.name!r} must be letters, digits, - and _")
    if (folder / f"{args.name}.key_secret").exists():
        raise ConfigError(f"{folder / args.name}.key_secret exists; choose another name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file there or above it, no permission, ...
        raise ConfigError(f"--dir {args.dir!r}: cannot make the key folder ({e.strerror}); give a folder, or a path "
                          "where one can be made") from None
    public, secret = folder / f"{args.name}.key", folder / f"{args.name}.key_secret"
    mask = os.umask(0o077)  # the secret file is created owner-only: it gets a client past the allow-list
    try:  # made in a private folder beside them, then renamed, the secret last (it marks the pair made): a full
        # disk or a kill leaves no cut key file
        with tempfile.TemporaryDirectory(prefix=f".{args.name}-", dir=folder) as tmp:
            made_public, made_secret = zmq.auth.create_certificates(tmp, args.name)
            os.chmod(made_public, 0o644)  # the public key is meant to be handed out
            os.chmod(made_secret, 0o600)
            os.replace(made_public, public)
            os.replace(made_secret, secret)
    except OSError as e:  # a full or read-only disk: one line naming the file
        raise RunDirError(f"cannot write {public}: {e.strerror or e}") from None
    finally:
        os.umask(mask)
    print(f"public key (give to the other side): {public}\nsecret key (keep private): {secret}")
    return 0
