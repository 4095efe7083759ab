"""``xdream weights list | download NAME... | verify [NAME...] | path NAME``.

The catalogue is whatever the registered plugins declare (:mod:`xdream.weights.catalogue`); the
store comes from the environment: ``$XDREAM_HOME`` (cache) and ``$XDREAM_WEIGHTS_MIRROR``.
``list`` prints each file's expected SHA-256 in full, in ``sha256sum``'s ``HASH  FILE`` form, so a
file copied to an offline rig PC can be checked by hand, and its URL with what is fixed about it
(pinned to a commit or not, hash and exact size published or not).
"""

from __future__ import annotations

from xdream.cli import common
from xdream.core.errors import WeightsError
from xdream.weights.cache import WeightsStore


def add_parser(commands) -> None:
    weights = commands.add_parser("weights", help="list, download, verify or locate pretrained weights")
    weights.set_defaults(handler=run)
    sub = weights.add_subparsers(dest="weights_command", required=True, parser_class=type(weights))
    sub.add_parser("list", help="the files registered plugins declare, their SHA-256 and whether each is cached")
    download = sub.add_parser("download", help="fetch weights into the cache, verified")
    download.add_argument("names", nargs="+", metavar="NAME")
    common.add_quiet(download)
    verify = sub.add_parser("verify", help="hash cached files against the catalogue (all if no NAME)")
    verify.add_argument("names", nargs="*", metavar="NAME")
    path = sub.add_parser("path", help="where the cached file of NAME lives")
    path.add_argument("name", metavar="NAME")


def run(args) -> int:
    store = WeightsStore.from_environment()
    command = args.weights_command
    if command == "list":
        print(f"cache: {store.dir}")
        for name, entry in store.catalog.items():
            print(f"{name:18s} {store.status(name):8s} {entry.size_text:>8s}  {entry.licence:10s} {entry.description}")
            print(f"    {entry.sha256 or '(no published SHA-256)':64s}  {entry.file_name}")
            print(f"    {entry.url}  [{entry.provenance_text()}]")
        return 0
    if command == "path":
        print(store.path(args.name))
        return 0
    if command == "download":
        for name in args.names:
            store.entry(name)  # every name is checked before anything is fetched
        for name in args.names:
            path = store.download(name, progress=not args.quiet)
            note = "" if store.entry(name).sha256 else " (no published SHA-256 to check)"
            print(f"{name}: {path}{note}")
        return 0
    names = args.names or list(store.catalog)
    bad = []
    for name in names:
        status = store.status(name, check_hash=True)
        print(f"{name:18s} {status}")
        if status.startswith("BAD"):
            bad.append(name)
    if bad:
        raise WeightsError(f"{len(bad)} cached file(s) failed verification: {', '.join(bad)}; "
                           f"delete them or run `xdream weights download NAME` to replace them")
    return 0
