"""The lab-rig link: the ``xdream-rig/1`` protocol (docs/protocol.md) and its codec.

Also the rig tools that need no simulated neuron: CURVE keys (:mod:`.keys`, ``xdream rig
keygen``) and the conformance checker (:mod:`.check`, ``xdream rig check``), with the parts
they share with the client: which side binds (:mod:`.attach`), the content probe
(:mod:`.probe`), the JSON Schema (:mod:`.schema`), free loopback ports (:mod:`.ports`) and the
tools' one-line argument parser (:mod:`.usage`). The ZeroMQ client responder (``zmq``) and the
rig simulator (``xdream rig simulate``) are plugins in the ``responders`` package.
"""

from xdream.rig.protocol import PROTOCOL, Limits, Message, ProtocolError, RigError, decode, encode

__all__ = ["PROTOCOL", "Limits", "Message", "ProtocolError", "RigError", "decode", "encode"]
