"""Weight files: the mechanism only. No file is named here: each plugin declares its own.

- :mod:`.entry`      one published file (url, file name, size, SHA-256, licence, citation)
- :mod:`.catalogue`  the files every registered plugin declares (``weights_files``), collected
- :mod:`.cache`      the local cache of those files: download, verify, path
- :mod:`.store`      checking a file against its SHA-256 and loading it before use
"""
