"""One relayed connection: two pipes, each with a delay queue (introduced in notebook 01).

A :class:`~helpers.capture.Relay` turns every accepted client into a :class:`_Link`: the
client's socket, a new socket to the target, the :class:`~helpers.capture.Capture` that
records them, and two :class:`_Pipe` objects, one per direction. A pipe moves bytes
from its ``src`` socket to its ``dst`` socket in three stages:

1. ``recv()`` on ``src``: the chunk is recorded and put on the **delay queue** with the
   time it is due (now + the relay's delay);
2. when a chunk is due it moves to ``out``, the bytes waiting for the kernel;
3. ``send()`` on ``dst`` takes what the kernel accepts; the rest waits in ``out``.

The end of a stream travels the same way: a FIN read from ``src`` goes through the
queue as ``None`` and is passed on with ``shutdown(SHUT_WR)`` once it is due, so a
half-closed connection stays half-closed. The pipes only hold state; the reactor in
:mod:`helpers.capture.relay` decides when to read, release and write.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from typing import TYPE_CHECKING

from .chunks import Direction

if TYPE_CHECKING:
    from .recording import Capture


def _nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # Nagle + delayed ACK would hold small handshake writes back by up to 40 ms and
        # blur every timing the relay is meant to show.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Pipe:
    """One direction of a relayed connection: src → (delay queue) → dst."""

    def __init__(self, direction: Direction, src: socket.socket, dst: socket.socket) -> None:
        self.direction = direction
        self.src = src
        self.dst = dst
        self.queue: deque[tuple[float, bytes | None]] = deque()  # (due, data); None = EOF
        self.out = bytearray()  # due bytes not yet accepted by the kernel
        self.queued = 0  # bytes in queue
        self.read_eof = False  # src sent FIN (or reset)
        self.eof_due = False  # the EOF has come out of the delay queue
        self.shut = False  # we have half-closed dst
        self.chunks = 0

    @property
    def pending(self) -> int:
        return self.queued + len(self.out)


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket, capture: Capture) -> None:
        self.client = client
        self.upstream = upstream
        self.capture = capture
        self.start = time.monotonic()
        self.connecting = True
        self.closed = False
        self.pipes = {
            "c2s": _Pipe("c2s", client, upstream),
            "s2c": _Pipe("s2c", upstream, client),
        }
        self.masks: dict[int, int] = {}
