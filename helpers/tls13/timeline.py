"""Two directions, one timeline (introduced in notebook 06).

The client's bytes and the server's bytes are two separate streams: each is decrypted
on its own, with its own keys and counters. To show the connection as a conversation,
the records of both must be merged again. A :class:`~helpers.capture.Capture` knows
when each chunk of bytes arrived, so each record gets the time of the chunk that
completed it (:func:`_stamp`). Bytes without a clock (a pcap's joined payloads, the
RFC 8448 trace) are merged in protocol order instead (:func:`_phase`): the hellos (and
0-RTT data), the server's flight, the client's flight (or its alert), then the client's
records before the server's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .result import Record


def _phase(record: Record) -> int:
    """A guess at protocol order when there are no timestamps (see :func:`decrypt`)."""
    names = {m.name for m in record.messages}
    label = record.key_label or ""
    if record.direction == "c2s":
        if record.inner_type == 21 and not record.encrypted:
            return 3  # an alert in clear: the client's answer to the server's flight
        if "EndOfEarlyData" in names:
            return 3  # sent after the server's flight, under the early secret (§4.5)
        if not label or label.startswith("CLIENT_EARLY"):
            return 0  # ClientHello, ChangeCipherSpec, 0-RTT data
        return 3 if label.startswith("CLIENT_HANDSHAKE") or "Finished" in names else 4
    if record.key_label is None:
        return 1
    return 2 if record.key_label.startswith("SERVER_HANDSHAKE") else 5


def _interleave(client: list[Record], server: list[Record]) -> list[Record]:
    both = client + server
    if all(r.t is not None for r in both) and both:
        return sorted(both, key=lambda r: (r.t, r.direction != "c2s", r.index))
    return sorted(both, key=lambda r: (_phase(r), r.direction != "c2s", r.index))


def _stamp(records: Sequence[Record], chunks: Iterable[Any]) -> None:
    """Give each record the time of the chunk that completed it."""
    ends: dict[str, list[tuple[int, float]]] = {"c2s": [], "s2c": []}
    totals = {"c2s": 0, "s2c": 0}
    for chunk in chunks:
        totals[chunk.direction] += len(chunk.data)
        ends[chunk.direction].append((totals[chunk.direction], chunk.t))
    for record in records:
        last_byte = record.offset + len(record.wire)
        for end, t in ends[record.direction]:
            if end >= last_byte:
                record.t = t
                break
