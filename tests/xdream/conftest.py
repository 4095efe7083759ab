"""A real HTTP file server on 127.0.0.1 for the weights manager's download tests.

It serves byte strings by path, honours ``Range: bytes=N-`` with 206 replies, records every
request's Range header, and can cut the connection after a number of bytes (per request, in
order) to simulate a dropped download, or claim a longer body than it sends (a reply that ends
early although every byte of the file is in it).
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FileServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cuts: list[int | None] = []  # bytes to send before cutting, one per request
        self.overclaims: list[int] = []  # bytes the Content-Length adds to the body, one per request
        self.no_length = False  # send no Content-Length: the body ends when the connection closes
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(data):  # as real servers do
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                extra = server.overclaims.pop(0) if server.overclaims else 0
                if not server.no_length:
                    self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                cut = server.cuts.pop(0) if server.cuts else None
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)
                self.close_connection = self.close_connection or extra > 0

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


# -- sessions of several evolution threads, on real units of EfficientNet-Lite0 ---------------------
SESSION_LAYER = "efficientnet_lite0:_blocks.2"
#: Two threads on one unit (pixel vs fourier: a paired comparison) and one on two units averaged.
SESSION = {
    "seed": 5,
    "generations": 3,
    "optimizer": {"name": "genetic", "population": 6},
    "reference": {"per_generation": 2},
    "thread": [
        {"name": "pix", "generator": {"name": "pixel", "size": 16}, "target": f"{SESSION_LAYER}:5"},
        {"name": "four", "generator": {"name": "fourier", "size": 32}, "target": f"{SESSION_LAYER}:5"},
        {"name": "avg", "generator": {"name": "pixel", "size": 16}, "optimizer": {"name": "cmaes", "population": 5},
         "target": [f"{SESSION_LAYER}:3", f"{SESSION_LAYER}:4"]},
    ],
}


def make_session(path, data=None, *, run=True, **run_kwargs):
    """A real session (xdream.evolve.experiment.Experiment) with one TorchLayer recording every thread's
    units; run to its end (or ``should_stop``) unless ``run`` is False (then it is returned open)."""
    import copy

    from responders.torch_layer import TorchLayer
    from xdream.config import ExperimentConfig
    from xdream import Experiment

    session = Experiment(ExperimentConfig.from_dict(copy.deepcopy(data or SESSION)),
                      responder=TorchLayer(SESSION_LAYER, input_size=64), run_dir=path)
    if not run:
        return session
    try:
        session.run(progress=False, **run_kwargs)
    finally:
        session.close()
    return path


@pytest.fixture
def session_factory():
    return make_session


@pytest.fixture
def session_config():
    """A copy of the three-thread session config the session fixtures run."""
    import copy

    return copy.deepcopy(SESSION)


@pytest.fixture(scope="session")
def finished_session(tmp_path_factory):
    """One finished three-thread session, shared read-only by the report and compare tests."""
    return make_session(tmp_path_factory.mktemp("session") / "run")
