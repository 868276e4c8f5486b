"""A bounds-checked reader: the only place that slices bytes (introduced in notebook 06).

Every TLS structure is built from three things (RFC 8446 §3): big-endian integers of
1, 2, 3 or 4 bytes, fixed-length byte strings, and *vectors*, a length prefix of 1, 2
or 3 bytes followed by that many bytes, with a range the RFC grammar states
(``opaque legacy_session_id<0..32>``). :class:`_Reader` reads exactly those, and every
read checks that the bytes are there. A truncated or lying length field therefore
never becomes an ``IndexError`` or, worse, a silently short slice: it becomes a
:class:`helpers.errors.ParseError` that names the byte offset and what was expected.

``vector()`` returns a new reader that spans only the vector's body, so a parser can
hand it to the code for the inner structure and then call ``done()`` to insist that
every byte was used. This is the same job notebook 06 does by hand with
``io.BytesIO``, plus the checks.
"""

from __future__ import annotations

from ..errors import ParseError


class _Reader:
    """Reads big-endian integers and length-prefixed vectors, or raises ParseError.

    ``base`` is the offset of ``data[0]`` in the caller's coordinates, so that errors
    name a position a learner can find in a hex dump of the whole message.
    """

    __slots__ = ("data", "pos", "end", "base")

    def __init__(self, data: bytes, base: int = 0, start: int = 0, end: int | None = None):
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else end
        self.base = base

    @property
    def offset(self) -> int:
        return self.base + self.pos

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, n: int, what: str) -> None:
        if n > self.remaining:
            raise ParseError(
                f"Expected {what} ({n} byte{'s' if n != 1 else ''}) but only "
                f"{self.remaining} byte{'s' if self.remaining != 1 else ''} remain",
                "The bytes are truncated or are not the TLS structure this function parses.",
                offset=self.offset,
            )

    def uint(self, size: int, what: str) -> int:
        self._need(size, what)
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def u8(self, what: str) -> int:
        return self.uint(1, what)

    def u16(self, what: str) -> int:
        return self.uint(2, what)

    def u24(self, what: str) -> int:
        return self.uint(3, what)

    def u32(self, what: str) -> int:
        return self.uint(4, what)

    def take(self, n: int, what: str) -> bytes:
        self._need(n, what)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def rest(self) -> bytes:
        chunk = self.data[self.pos : self.end]
        self.pos = self.end
        return bytes(chunk)

    def vector(
        self, length_size: int, what: str, minimum: int = 0, maximum: int | None = None
    ) -> _Reader:
        """Read a ``<minimum..maximum>`` vector's length prefix; return a reader over its body."""
        start = self.offset
        length = self.uint(length_size, f"the length of {what}")
        if length < minimum or (maximum is not None and length > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f"at least {minimum}"
            raise ParseError(
                f"Expected the length of {what} to be {bound} bytes but it is {length}",
                "The RFC grammar gives every vector a range; this one is outside it.",
                offset=start,
            )
        self._need(length, what)
        sub = _Reader(self.data, self.base, self.pos, self.pos + length)
        self.pos += length
        return sub

    def opaque(
        self, length_size: int, what: str, minimum: int = 0, maximum: int | None = None
    ) -> bytes:
        return self.vector(length_size, what, minimum, maximum).rest()

    def list_of(self, item_size: int, what: str) -> list[int]:
        if self.remaining % item_size:
            raise ParseError(
                f"Expected {what} to be a whole number of {item_size}-byte values but "
                f"{self.remaining} bytes remain",
                offset=self.offset,
            )
        return [self.uint(item_size, what) for _ in range(self.remaining // item_size)]

    def done(self, what: str) -> None:
        if self.remaining:
            raise ParseError(
                f"Expected the end of {what} but {self.remaining} more bytes follow",
                "Trailing bytes mean a length field and the data disagree.",
                offset=self.offset,
            )


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")
