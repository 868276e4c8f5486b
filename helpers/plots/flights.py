"""Flights and round trips, counted from a captured handshake (notebook 06).

No drawing here: this is the bookkeeping the handshake diagrams (:mod:`.handshakes`)
print in their titles and under their last arrow.

A *flight* is a run of records one side sends before it must wait for the other
(RFC 8446 §2 draws them as arrows). A *round trip* is a time the client had to wait for
the server before it could send application data. We count both from record *types*
and directions alone, which stay visible even when the contents are encrypted, so the
count works on any :class:`helpers.capture.Capture` without keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FlightCount", "count_flights"]


def _pretty_version(version: str | None) -> str:
    """``"TLSv1.3"`` → ``"TLS 1.3"``."""
    if not version:
        return "TLS (version unknown)"
    return version.replace("TLSv", "TLS ").replace("SSLv", "SSL ")


@dataclass(frozen=True)
class FlightCount:
    """How a handshake used the network.

    A *flight* is a run of records one side sends before it must wait for the other
    (RFC 8446 §2 draws them as arrows). A *round trip* is a time the client had to wait
    for the server before it could send application data.
    """

    version: str | None
    flights: int  #: flights until both Finished messages were sent
    round_trips: int  #: server flights the client waited for, up to the server's Finished
    complete: bool  #: False when the capture stops before both Finished messages

    def __str__(self) -> str:
        rt = f"{self.round_trips} round trip" + ("s" if self.round_trips != 1 else "")
        return f"{_pretty_version(self.version)}: {rt} ({self.flights} flights)"


def _groups(events: Sequence[Any]) -> list[list[int]]:
    """Indexes of events, grouped into flights (consecutive records in one direction)."""
    groups: list[list[int]] = []
    for i, event in enumerate(events):
        if groups and events[groups[-1][0]].direction == event.direction:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _finished_events(events: Sequence[Any], version: str | None) -> tuple[int | None, int | None]:
    """Indexes of the events carrying the server's and the client's Finished.

    We read record *types*, which stay visible even when the contents are encrypted:

    * TLS 1.2 (RFC 5246 §7.4.9): each side's Finished is the first handshake record it
      sends after its ChangeCipherSpec.
    * TLS 1.3 (RFC 8446 §2): the server's Finished closes the flight that starts with
      its ServerHello; the client's Finished is its first encrypted record after that.
    """

    def first(start: int, direction: str, test: Any) -> int | None:
        for i in range(start, len(events)):
            if events[i].direction == direction and test(events[i]):
                return i
        return None

    if version == "TLSv1.3":
        hello = first(0, "s2c", lambda e: "ServerHello" in e.names)
        if hello is None:
            return None, None
        server = hello
        while server + 1 < len(events) and events[server + 1].direction == "s2c":
            server += 1  # the rest of the server's first flight (… Finished)
        client = first(hello, "c2s", lambda e: e.encrypted)
        return server, client
    fin = []
    for direction in ("s2c", "c2s"):
        ccs = first(0, direction, lambda e: e.record.content_type == 20)
        fin.append(
            None
            if ccs is None
            else first(ccs + 1, direction, lambda e: e.record.content_type == 22)
        )
    return fin[0], fin[1]


def _count(events: Sequence[Any], version: str | None) -> tuple[FlightCount, int]:
    groups = _groups(events)
    flight_of = {i: f for f, group in enumerate(groups) for i in group}
    server, client = _finished_events(events, version)
    if server is None or client is None:
        waits = sum(1 for g in groups if events[g[0]].direction == "s2c")
        return FlightCount(version, len(groups), waits, False), len(events) - 1
    last = max(server, client)
    waits = sum(1 for f in range(flight_of[server] + 1) if events[groups[f][0]].direction == "s2c")
    return FlightCount(version, flight_of[last] + 1, waits, True), last


def count_flights(capture: Any) -> FlightCount:
    """Count the flights and round trips of a captured handshake.

    >>> count_flights(capture_12)   # doctest: +SKIP
    FlightCount(version='TLSv1.2', flights=4, round_trips=2, complete=True)
    """
    return _count(capture.events(strict=False), capture.version)[0]
