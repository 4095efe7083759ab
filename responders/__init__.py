"""Responder plugins for xdream: CNN units, the rig client (``zmq``) and noise models
(``xdream.responders``, ``xdream.noise``), and the rig simulator (``xdream.rig``: ``xdream rig
simulate``)."""
