"""Image generator plugins for xdream (registered under ``xdream.generators``)."""
