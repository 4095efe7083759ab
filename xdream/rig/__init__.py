"""The lab-rig link: the ``xdream-rig/1`` protocol (docs/protocol.md) and its codec.

The ZeroMQ client responder (``zmq``) and the rig simulator (``xdream rig simulate``) are
plugins in the ``responders`` package; the core only defines the messages they exchange.
"""

from xdream.rig.protocol import PROTOCOL, Limits, Message, ProtocolError, RigError, decode, encode

__all__ = ["PROTOCOL", "Limits", "Message", "ProtocolError", "RigError", "decode", "encode"]
