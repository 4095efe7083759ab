"""Readers of acquisition-system streams; each fills an :class:`~rigkit.acquired.Acquired`."""
