"""``xdream weights list | download NAME... | verify [NAME...] | path NAME``.

The store comes from the environment: ``$XDREAM_HOME`` (cache) and ``$XDREAM_WEIGHTS_MIRROR``.
"""

from __future__ import annotations

from xdream.cli import common
from xdream.core.errors import WeightsError
from xdream.weights.catalogue import WeightsStore


def add_parser(commands) -> None:
    weights = commands.add_parser("weights", help="list, download, verify or locate pretrained weights")
    weights.set_defaults(handler=run)
    sub = weights.add_subparsers(dest="weights_command", required=True, parser_class=type(weights))
    sub.add_parser("list", help="catalogue entries and whether each is cached")
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
