"""The weights manager against a real HTTP server on 127.0.0.1: progress, resume after a cut
connection, hash and size checks with quarantine, atomic placement, and the offline message."""

import hashlib
import io
from collections import OrderedDict
from types import MappingProxyType

import pytest
import torch

from xdream.core.errors import UnknownNameError, WeightsError
from xdream.rig.ports import free_loopback_port
from xdream.weights.cache import WeightsStore, default_home
from xdream.weights.catalogue import registered
from xdream.weights.entry import WeightsEntry

CATALOG = registered()


def state_dict_bytes(seed=0, n=300_000) -> bytes:
    """A real torch state-dict file (pickled OrderedDict of tensors), ~1.2 MB."""
    g = torch.Generator().manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(OrderedDict(w=torch.randn(n, generator=g), b=torch.randn(7, generator=g)), buffer)
    return buffer.getvalue()


@pytest.fixture
def payload():
    return state_dict_bytes()


def make_store(tmp_path, server, payload, *, sha=True, size=True, mirror=None):
    entry = WeightsEntry(
        name="test-net", url=f"{server.base}/test.pt", file_name="test.pt",
        sha256=hashlib.sha256(payload).hexdigest() if sha else None,
        size=len(payload) if size else None, licence="MIT", description="a test file",
    )
    return WeightsStore(tmp_path / "home", MappingProxyType({"test-net": entry}), mirror=mirror)


def test_catalog_has_every_deepsim_variant_with_published_facts():
    variants = ["norm1", "norm2", "conv3", "conv4", "pool5", "fc6", "fc6-eucl", "fc7", "fc8"]
    assert {f"deepsim-{v}" for v in variants} <= set(CATALOG)
    fc6 = CATALOG["deepsim-fc6"]
    assert fc6.url == ("https://huggingface.co/binxu/DeePSim_DosovitskiyBrox2016/resolve/"
                       "a815407b56ac4c6643faff6a67ca25d60962991b/upconvGAN_fc6.pt")
    assert fc6.size == 224_398_749 and fc6.licence == "MIT"
    for entry in CATALOG.values():
        assert entry.sha256 is None or (len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0)
        # the cache name keeps the publisher's (BigGAN-deep 128's Hub copy is a generic pytorch_model.bin)
        assert entry.file_name.endswith(entry.url.rsplit("/", 1)[-1])
    assert len({entry.file_name for entry in CATALOG.values()}) == len(CATALOG)


def test_home_from_environment(tmp_path):
    assert default_home({"XDREAM_HOME": str(tmp_path)}) == tmp_path
    assert "xdream" in str(default_home({}))
    store = WeightsStore.from_environment({"XDREAM_HOME": str(tmp_path), "XDREAM_WEIGHTS_MIRROR": "http://m/x/"})
    assert store.path("deepsim-fc6") == tmp_path / "weights" / "upconvGAN_fc6.pt"
    assert store.url("deepsim-fc6") == "http://m/x/upconvGAN_fc6.pt"


def test_download_shows_progress_verifies_and_renames(tmp_path, file_server, payload, capsys):
    file_server.files["test.pt"] = payload
    store = make_store(tmp_path, file_server, payload)
    path = store.download("test-net", progress=True)
    assert path == store.path("test-net") and path.read_bytes() == payload
    assert not path.with_name("test.pt.part").exists()
    err = capsys.readouterr().err
    assert "test.pt" in err and "100%" in err
    assert torch.load(path, weights_only=True)["b"].shape == (7,)
    assert store.resolve("test-net") == path
    assert store.status("test-net", check_hash=True) == "ok"


def test_resume_after_a_cut_connection(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload
    file_server.cuts = [400_000]  # the first response stops after 400 kB
    store = make_store(tmp_path, file_server, payload)
    path = store.download("test-net", progress=False)
    assert path.read_bytes() == payload
    assert file_server.ranges == [None, "bytes=400000-"]


def test_a_cut_connection_without_content_length_is_resumed_not_rejected(tmp_path, file_server, payload):
    """A server (a lab mirror) that sends no Content-Length and drops the connection: the short
    file was taken for the whole download, then rejected for its size and quarantined ('download
    rejected'), the bytes already fetched thrown away; it is a cut connection, resumed."""
    file_server.files["test.pt"] = payload
    file_server.no_length = True
    file_server.cuts = [400_000]
    store = make_store(tmp_path, file_server, payload)
    path = store.download("test-net", progress=False)
    assert path.read_bytes() == payload and not store.quarantine_dir().exists()
    assert file_server.ranges == [None, "bytes=400000-"]


def test_a_download_that_nothing_can_verify_is_not_placed(tmp_path, file_server, payload):
    """An entry published with neither a SHA-256 nor an exact size (BigGAN-deep 256/512: a size in
    MiB), from a server that sends no Content-Length: a download cut within half a MiB of its end
    was placed in the cache as whole. Nothing tells a cut file from the whole one there, so it is
    refused in one line, moved aside, and the cache holds nothing."""
    import dataclasses

    file_server.files["test.pt"] = payload
    file_server.no_length = True
    file_server.cuts = [len(payload) - 300_000]
    store = make_store(tmp_path, file_server, payload, sha=False, size=False)
    entry = dataclasses.replace(store.entry("test-net"), size_mib=round(len(payload) / 2**20))
    store = WeightsStore(store.dir.parent, MappingProxyType({"test-net": entry}))
    with pytest.raises(WeightsError, match="sent no Content-Length") as info:
        store.download("test-net", progress=False)
    assert "\n" not in str(info.value) and not store.path("test-net").exists()
    assert len(list(store.quarantine_dir().iterdir())) == 1


def test_resume_of_a_partial_left_by_an_earlier_process(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload
    store = make_store(tmp_path, file_server, payload)
    store.dir.mkdir(parents=True)
    store.path("test-net").with_name("test.pt.part").write_bytes(payload[:123_456])
    assert store.download("test-net", progress=False).read_bytes() == payload
    assert file_server.ranges == ["bytes=123456-"]


@pytest.mark.parametrize("good", [True, False])
def test_complete_partial_is_checked_not_refetched(tmp_path, file_server, payload, good):
    file_server.files["test.pt"] = payload
    store = make_store(tmp_path, file_server, payload)
    store.dir.mkdir(parents=True)
    part = store.path("test-net").with_name("test.pt.part")
    part.write_bytes(payload if good else payload[::-1])
    if good:
        assert store.download("test-net", progress=False).read_bytes() == payload
    else:
        with pytest.raises(WeightsError, match="download rejected"):
            store.download("test-net", progress=False)
        assert not store.path("test-net").exists() and not part.exists()
    assert file_server.ranges == [f"bytes={len(payload)}-"]  # answered 416: nothing left to fetch


def test_a_retry_answered_416_places_the_partial_the_first_reply_completed(tmp_path, file_server, payload):
    """The first reply ends short of its Content-Length, yet every byte of the file is in it: the
    retry's 416 (nothing left to fetch) means the partial is checked and placed, not reported as
    a failed download."""
    file_server.files["test.pt"] = payload
    file_server.overclaims = [1]
    store = make_store(tmp_path, file_server, payload)
    assert store.download("test-net", progress=False).read_bytes() == payload
    assert file_server.ranges == [None, f"bytes={len(payload)}-"]


def test_every_attempt_cut_keeps_the_partial_and_says_so(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload
    file_server.cuts = [100_000, 100_000, 100_000]
    store = make_store(tmp_path, file_server, payload)
    with pytest.raises(WeightsError, match="300000 bytes kept in .*test.pt.part to resume"):
        store.download("test-net", progress=False)
    assert not store.path("test-net").exists()
    file_server.cuts = []
    assert store.download("test-net", progress=False).read_bytes() == payload  # resumes to the end
    assert file_server.ranges[-1] == "bytes=300000-"


def test_hash_mismatch_is_rejected_and_quarantined(tmp_path, file_server, payload):
    wrong = state_dict_bytes(seed=1)
    assert len(wrong) == len(payload)
    file_server.files["test.pt"] = wrong
    store = make_store(tmp_path, file_server, payload)
    with pytest.raises(WeightsError) as info:
        store.download("test-net", progress=False)
    message = str(info.value)
    assert "download rejected" in message and hashlib.sha256(payload).hexdigest() in message
    assert "\n" not in message
    assert not store.path("test-net").exists()
    bad = list(store.quarantine_dir().iterdir())
    assert len(bad) == 1 and bad[0].read_bytes() == wrong and str(bad[0]) in message


def test_size_mismatch_is_rejected_without_hashing_a_wrong_length(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload[:-10]
    store = make_store(tmp_path, file_server, payload)
    with pytest.raises(WeightsError, match=f"expected {len(payload)}"):
        store.download("test-net", progress=False)
    assert not store.path("test-net").exists()


def test_good_file_is_never_overwritten(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload
    store = make_store(tmp_path, file_server, payload)
    store.download("test-net", progress=False)
    file_server.files["test.pt"] = state_dict_bytes(seed=2)
    before = len(file_server.ranges)
    assert store.download("test-net", progress=False).read_bytes() == payload
    assert len(file_server.ranges) == before  # no request at all


def test_corrupt_cached_file_is_quarantined_then_replaced(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload
    store = make_store(tmp_path, file_server, payload)
    store.dir.mkdir(parents=True)
    store.path("test-net").write_bytes(b"x" * len(payload))
    with pytest.raises(WeightsError, match="SHA-256 .* replace it with `xdream weights download test-net`"):
        store.resolve("test-net")
    assert store.download("test-net", progress=False).read_bytes() == payload
    assert [p.read_bytes()[:3] for p in store.quarantine_dir().iterdir()] == [b"xxx"]


def test_unpublished_hash_downloads_and_checks_size(tmp_path, file_server, payload):
    file_server.files["test.pt"] = payload
    store = make_store(tmp_path, file_server, payload, sha=False)
    assert store.download("test-net", progress=False).read_bytes() == payload
    assert store.status("test-net", check_hash=True).startswith("ok (hash not published")


def test_mirror_replaces_the_publisher_url(tmp_path, file_server, payload):
    file_server.files["lab/test.pt"] = payload
    entry_store = make_store(tmp_path, file_server, payload, mirror=f"{file_server.base}/lab/")
    assert entry_store.download("test-net", progress=False).read_bytes() == payload


def test_offline_error_names_url_hash_and_destination(tmp_path, payload):
    port = free_loopback_port()  # nothing listens there: connection refused
    entry = WeightsEntry("test-net", f"http://127.0.0.1:{port}/test.pt", "test.pt",
                         hashlib.sha256(payload).hexdigest(), len(payload), "MIT", "")
    store = WeightsStore(tmp_path / "home", {"test-net": entry})
    with pytest.raises(WeightsError) as info:
        store.download("test-net", progress=False, attempts=1)
    message = str(info.value)
    assert entry.url in message and entry.sha256 in message and str(store.path("test-net")) in message
    assert "\n" not in message


def test_http_error_is_one_clear_line(tmp_path, file_server, payload):
    store = make_store(tmp_path, file_server, payload)  # the server has no such file: 404
    with pytest.raises(WeightsError, match="404"):
        store.download("test-net", progress=False)


def test_missing_file_error_tells_how_to_get_it(tmp_path):
    store = WeightsStore(tmp_path)
    with pytest.raises(WeightsError) as info:
        store.resolve("deepsim-fc6")
    message = str(info.value)
    assert "xdream weights download deepsim-fc6" in message
    assert CATALOG["deepsim-fc6"].url in message and CATALOG["deepsim-fc6"].sha256 in message
    assert str(tmp_path / "weights" / "upconvGAN_fc6.pt") in message


def test_unknown_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown weights 'deepsim-fc9'; valid: biggan-deep-128, .*, deepsim-conv3"):
        WeightsStore(tmp_path).path("deepsim-fc9")


def test_local_file_is_verified_unless_told_not_to(tmp_path, payload):
    store = WeightsStore(tmp_path, {"test-net": WeightsEntry(
        "test-net", "http://x/test.pt", "test.pt", "0" * 64, None, "MIT", "")})
    local = tmp_path / "mine.pt"
    local.write_bytes(payload)
    with pytest.raises(WeightsError, match="--no-verify"):
        store.resolve("test-net", local)
    assert store.resolve("test-net", local, verify=False) == local
    assert store.resolve("test-net", local, sha256=hashlib.sha256(payload).hexdigest()) == local
    with pytest.raises(WeightsError, match="not found"):
        store.resolve("test-net", tmp_path / "nope.pt")


def test_a_pinned_hash_is_checked_under_verify_false(tmp_path, payload):
    """``verify = false`` waives only the published hash: a file pinned with ``sha256`` is checked."""
    store = WeightsStore(tmp_path, {"test-net": WeightsEntry(
        "test-net", "http://x/test.pt", "test.pt", "0" * 64, None, "MIT", "")})
    local = tmp_path / "mine.pt"
    local.write_bytes(payload)
    pinned = hashlib.sha256(payload).hexdigest()
    assert store.resolve("test-net", local, verify=False, sha256=pinned) == local
    local.write_bytes(payload[:-1] + b"x")
    with pytest.raises(WeightsError, match=f"SHA-256 [0-9a-f]{{64}}, expected {pinned}") as info:
        store.resolve("test-net", local, verify=False, sha256=pinned)
    assert "\n" not in str(info.value)


def test_every_hub_url_is_pinned_to_a_commit():
    """resolve/main follows the branch; every catalogued Hugging Face file names its commit."""
    hub = [entry for entry in CATALOG.values() if entry.url.startswith("https://huggingface.co/")]
    assert len(hub) >= 11  # nine DeePSiM variants, BigGAN-deep 128's Hub copy, CaffeNet
    assert all(entry.pinned for entry in hub), [entry.url for entry in hub if not entry.pinned]
    base = dict(name="x", file_name="f.pt", sha256=None, size=None, licence="MIT", description="")
    assert not WeightsEntry(url="https://huggingface.co/a/b/resolve/main/f.pt", **base).pinned
    assert not WeightsEntry(url="https://huggingface.co/a/b/resolve/a815407/f.pt", **base).pinned  # short: a prefix
    assert not WeightsEntry(url="https://example.org/resolve/" + "0" * 40 + "/f.pt", **base).pinned


def test_a_pinned_hash_is_read_as_hex_digits_whatever_their_case(tmp_path, payload):
    """``sha256 = "HASH"`` pins weights of your own: the hash PowerShell's Get-FileHash prints
    (upper case) is the same hash; a value that is no SHA-256 at all is refused on one line
    naming it and what is allowed, not blamed on the file."""
    store = WeightsStore(tmp_path, {"test-net": WeightsEntry(
        "test-net", "http://x/test.pt", "test.pt", "0" * 64, None, "MIT", "")})
    local = tmp_path / "mine.pt"
    local.write_bytes(payload)
    assert store.resolve("test-net", local, sha256=hashlib.sha256(payload).hexdigest().upper()) == local
    for bad in ("abc123", hashlib.sha256(payload).hexdigest()[:-1] + "g"):
        with pytest.raises(WeightsError) as info:
            store.resolve("test-net", local, sha256=bad)
        message = str(info.value)
        assert f"sha256 {bad!r} is not a SHA-256 hash" in message and "64 hexadecimal digits" in message
        assert "corrupt" not in message and "\n" not in message
