"""``xdream weights list | download NAME... | download --preset NAME [--dry-run] | verify [NAME...] | path NAME``.

The catalogue is whatever the registered plugins declare (:mod:`xdream.weights.catalogue`); the
store comes from the environment: ``$XDREAM_HOME`` (cache) and ``$XDREAM_WEIGHTS_MIRROR``.
``list`` prints each file's expected SHA-256 in full, in ``sha256sum``'s ``HASH  FILE`` form, so a
file copied to an offline rig PC can be checked by hand, and its URL with what is fixed about it
(pinned to a commit or not, hash and exact size published or not). ``download --preset NAME``
says which files a published setup (``xdream evolve --preset NAME``) loads, where each is expected
and whether it is there, then fetches the missing ones (``--dry-run``: only says).
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
    download.add_argument("names", nargs="*", metavar="NAME")
    download.add_argument("--preset", metavar="PRESET",
                          help="the files `xdream evolve --preset PRESET` loads: listed, then the missing ones fetched")
    download.add_argument("--dry-run", action="store_true", help="with --preset: list the files, fetch nothing")
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
    if command == "download" and (args.preset or not args.names):
        return download_preset(args)
    if command == "download":
        if args.dry_run:  # it lists a preset's files; never a silent download of the names
            raise WeightsError(f"--dry-run lists the files of --preset PRESET and fetches nothing; xdream weights "
                               f"download {' '.join(args.names)} fetches them: drop --dry-run, or give --preset")
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


def download_preset(args) -> int:
    """``download --preset NAME``: the preset's source, its files (present or missing, where, how
    to get each), then each missing one fetched: xdream's catalogue through the store (verified),
    a torchvision model's through torchvision's own download into torch's hub cache."""
    from xdream.config import ExperimentConfig, presets
    from xdream.weights.needed import run_files

    if not args.preset or args.names:
        raise WeightsError("xdream weights download takes NAME... (catalogue names, xdream weights list) or "
                           "--preset PRESET, not both and not neither; presets: " + ", ".join(presets.names()))
    table = presets.preset(args.preset)
    files = run_files(ExperimentConfig.from_dict(presets.preset_config(args.preset)))
    print(f"preset {args.preset}: {table['source']}")
    for f in files:
        print(f"  {f.what:32s} {'present' if f.present else 'MISSING':8s} {f.path}" + ("" if f.present else f"  ({f.how})"))
    missing = [f for f in files if not f.present]
    if args.dry_run or not missing:
        print(f"{len(missing)} of {len(files)} file(s) missing" + (": run without --dry-run to fetch them"
                                                                     if missing and args.dry_run else ""))
        return 0
    store = WeightsStore.from_environment()
    for f in missing:
        if f.catalogue_name is not None:
            print(f"{f.what}: {store.download(f.catalogue_name, progress=not args.quiet)}")
        elif f.fetch is not None:
            try:
                print(f"{f.what}: {f.fetch()}")
            except Exception as exc:  # torchvision's download: offline, refused, hash prefix wrong
                detail = (str(exc).strip().splitlines() or [""])[0][:120]
                raise WeightsError(f"{f.what}: cannot download ({type(exc).__name__}: {detail}); {f.how}") from None
        else:
            raise WeightsError(f"{f.what}: {f.path} is missing and xdream cannot fetch it; {f.how}")
    return 0
