"""``xdream compare``: evolution vs gradient ascent vs natural images on one target.

- :mod:`.comparison`  the comparison run and its tables
- :mod:`.natural`     natural-image reference sets (scikit-image's photographs or a folder)
"""
