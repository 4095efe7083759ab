"""Weight files: the mechanism only (catalogue entries come from the plugins that use them).

- :mod:`.store`      locating a file and checking it against its SHA-256 before it is loaded
- :mod:`.catalogue`  the local cache of published weight files: download, verify, path
"""
