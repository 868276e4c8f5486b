"""The unit of a recording: a :class:`Chunk` of bytes that went one way (notebook 01).

Both ways of recording (:func:`~helpers.capture.capture_memory` and
:class:`~helpers.capture.Relay`) write down the same thing: whatever one ``read()`` or
``recv()`` returned, which way it went and when. A chunk knows nothing of TLS. It may
hold half a record or three records and a bit; :mod:`helpers.capture.events` cuts the
chunks of one direction into records.

A direction is a string: ``"c2s"`` (client → server) or ``"s2c"`` (server → client).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import UsageError

__all__ = ["ARROWS", "DIRECTIONS", "Chunk", "Direction"]

Direction = Literal["c2s", "s2c"]
DIRECTIONS: tuple[Direction, Direction] = ("c2s", "s2c")
ARROWS = {"c2s": "client → server", "s2c": "server → client"}


@dataclass(frozen=True, repr=False)
class Chunk:
    """Bytes that travelled one way, and when (seconds since the capture started)."""

    direction: Direction
    data: bytes
    t: float

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise UsageError(
                f"A chunk's direction must be 'c2s' or 's2c', not {self.direction!r}.",
                "'c2s' is client to server, 's2c' server to client.",
            )

    def __repr__(self) -> str:
        return f"Chunk({self.direction}, {len(self.data)} bytes, t={self.t * 1000:.1f} ms)"
