"""``xdream compare``: evolution vs gradient ascent vs natural images on one target.

- :mod:`.comparison`  the comparison run and its tables; the threads of a recorded run (--from-session)
"""
