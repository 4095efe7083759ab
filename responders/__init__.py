"""Responder plugins for xdream: CNN units and noise models (``xdream.responders``, ``xdream.noise``)."""
