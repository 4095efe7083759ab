"""Weight files: the mechanism only. No file is named here: each plugin declares its own.

- :mod:`.entry`      one published file (url, file name, size, SHA-256, licence, citation)
- :mod:`.catalogue`  the files every registered plugin declares (``weights_files``), collected
- :mod:`.cache`      the local cache of those files: download, verify, path
- :mod:`.store`      one file: located, checked against its SHA-256 where one is given, loaded
- :mod:`.needed`     the files a configured run loads and which are missing (presets)
"""
