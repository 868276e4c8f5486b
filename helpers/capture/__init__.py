"""Record the bytes of a TLS connection (introduced in notebook 01; decoded in notebook 06).

Theory of operation
-------------------
Wireshark shows a TLS handshake by sniffing packets. We do the same thing from inside
Python, in two ways, and both give you a :class:`Capture`: a list of :class:`Chunk`
objects, each a run of bytes that went one way (``"c2s"`` client→server or ``"s2c"``
server→client) at a time ``t`` (seconds since the capture started).

1. :func:`capture_memory` runs a client and a server **in the same thread** with no
   sockets at all: two ``SSLObject`` instances over :class:`ssl.MemoryBIO` buffers take
   turns, and every flight one writes is recorded on its way into the other. This is
   the TLS state machine with the network removed: deterministic and fast.

2. :class:`Relay` is a small TCP proxy on 127.0.0.1: point any client (``requests``,
   ``openssl s_client``, a browser) at the relay instead of the server and it forwards
   every byte, recording it. It can also **delay** each direction (to feel what round
   trips cost) and **tamper** with bytes (to watch TLS integrity protection catch a
   single flipped bit, :func:`flip_record_byte`). One thread runs every connection.

A capture is only bytes. :meth:`Capture.events` cuts them into TLS records with the
sans-IO parsers of :mod:`helpers.handshake`, decodes the plaintext handshake messages
and marks what is encrypted; the names of encrypted handshake messages are educated
guesses there, and :mod:`helpers.tls13` decrypts them.

Where things are, in reading order
----------------------------------
Everything below is importable from ``helpers.capture`` itself.

================  ==================================================================
``chunks.py``     ``Chunk``: bytes that went one way, and when; the two directions
``recording.py``  ``Capture``: one recorded connection, its bytes, records and hellos
``events.py``     ``Event`` and ``Capture.events()``: every record labelled, and what
                  is encrypted (TLS 1.2 vs TLS 1.3)
``display.py``    how a capture shows as an HTML table in a notebook
``saving.py``     ``Capture.to_dict`` / ``from_dict`` / ``save`` / ``load``: the JSON
                  format; secrets (the key log) stay out unless asked, loading checks
``memory.py``     ``capture_memory()``: a client and a server over MemoryBIOs, in one
                  thread; ``DEFAULT_REQUEST``, ``DEFAULT_RESPONSE``
``pipes.py``      one relayed connection: a pipe per direction, with its delay queue
``relay.py``      ``Relay``: the recording, delaying, tampering TCP relay and its
                  selectors reactor
``tamper.py``     ``flip_record_byte()``: a tamper hook that flips one bit of one record
================  ==================================================================
"""

from __future__ import annotations

from .chunks import Chunk
from .events import Event
from .memory import DEFAULT_REQUEST, DEFAULT_RESPONSE, capture_memory
from .recording import Capture
from .relay import Relay
from .tamper import flip_record_byte

# Also importable from here, as they were before the package was split (not in __all__).
from .chunks import ARROWS as ARROWS  # isort: skip
from .chunks import DIRECTIONS as DIRECTIONS  # isort: skip
from .chunks import Direction as Direction  # isort: skip

__all__ = [
    "Chunk",
    "Event",
    "Capture",
    "capture_memory",
    "Relay",
    "flip_record_byte",
    "DEFAULT_REQUEST",
    "DEFAULT_RESPONSE",
]
