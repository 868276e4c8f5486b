"""How long handshakes take, measured through a delaying relay (introduced in notebook 01 (drawn in 06)).

Theory of operation
-------------------
On loopback a TLS handshake takes about a millisecond, almost all of it CPU; you cannot
see a round trip. Across the internet a round trip (RTT) costs 20–200 ms, and it is the
*number of round trips*, not the cryptography, that makes a handshake slow. So we put a
:class:`helpers.capture.Relay` between client and server that holds every chunk for
``delay`` seconds in each direction: one round trip then costs ``2 * delay``.

:func:`measure_timeline` opens four real connections through one relay:

1. **TLS 1.2, full handshake** (RFC 5246 §7.3): ClientHello → ServerHello, Certificate,
   ServerKeyExchange, ServerHelloDone → ClientKeyExchange, ChangeCipherSpec, Finished →
   ChangeCipherSpec, Finished. The client waits for the server twice: **2 RTT**.
2. **TLS 1.2, resumed** (the abbreviated handshake, RFC 5246 §7.3 and RFC 5077 §3.1 for
   tickets) with the session of the first connection: ClientHello (with the ticket) →
   ServerHello, ChangeCipherSpec, Finished → ChangeCipherSpec, Finished. No key exchange
   and no certificate, and the *server* finishes first, so the client can send data
   right after its own Finished: **1 RTT**, one less than the full TLS 1.2 handshake.
3. **TLS 1.3, full handshake** (RFC 8446 §2): the ClientHello already carries a key
   share, so the server answers with *everything* at once and the client can send
   data right after its Finished: **1 RTT**.
4. **TLS 1.3, resumed** (RFC 8446 §2.2) with the ticket the server sent after the
   third handshake (``SSLSocket.session``, ``session=``, ``session_reused``). Still
   1 RTT (Python does not do 0-RTT early data), but no Certificate or
   CertificateVerify travels and no signature is checked. TLS 1.3 resumption saves
   work and bytes; TLS 1.2 resumption also saves a round trip, because the full
   TLS 1.2 handshake needs two.

For each connection we take the client's own clock (connect, handshake) and the relay's
chunk timestamps: the relay records a chunk when it *receives* it, i.e. when its sender
sent it, and forwards it ``delay`` later. So a flight is drawn from "sent" to
"sent + delay".

One thing the relay cannot slow down is the **TCP handshake**: the kernel answers the
SYN for the relay's listening socket before the relay even sees the connection. We
measure it anyway (it is tiny, loopback), and the drawing *models* it as one RTT,
clearly marked, because that is what it costs on a real network.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from .capture import Capture, Relay
from .errors import ConnectionProblem
from .fetch import TargetLike, parse_target

__all__ = ["Flight", "Timing", "measure_timeline", "measure_connection"]


@dataclass(frozen=True)
class Flight:
    """Records one side sent in a row, before waiting for the other side.

    Times are seconds since the client started to connect.
    """

    direction: str  #: "c2s" (client → server) or "s2c"
    sent: float  #: when the sender handed it to the network (the relay received it)
    arrived: float  #: when the relay delivered it (``sent + delay``)
    label: str  #: e.g. "ClientHello" or "ServerHello … Finished"
    size: int  #: bytes on the wire


@dataclass
class Timing:
    """One measured connection: TCP connect, TLS handshake, and its flights."""

    name: str  #: "TLS 1.3 full handshake", ...
    version: str | None  #: as negotiated ("TLSv1.3")
    resumed: bool  #: did the server accept the session we offered?
    delay: float  #: one-way delay the relay added (seconds)
    connect: float  #: measured TCP connect to the relay (not delayed, see module doc)
    handshake: float  #: measured on the client: start of ClientHello → handshake done
    flights: list[Flight] = field(default_factory=list)
    capture: Capture | None = None

    @property
    def rtt(self) -> float:
        """The round-trip time the relay imposes: two one-way delays."""
        return 2 * self.delay

    @property
    def round_trips(self) -> int:
        """The handshake time in whole round trips (what the protocol promises)."""
        return round(self.handshake / self.rtt) if self.rtt > 0 else 0

    def __repr__(self) -> str:
        return (
            f"<Timing {self.name}: handshake {self.handshake * 1000:.0f} ms "
            f"= {self.round_trips} RTT of {self.rtt * 1000:.0f} ms, "
            f"{len(self.flights)} flights{', resumed' if self.resumed else ''}>"
        )


def _client_context(version: ssl.TLSVersion, cafile: str | PathLike[str] | None) -> ssl.SSLContext:
    # Verification stays on: a timing lesson is no excuse to accept any certificate
    # (a man in the middle would be timed just as happily).
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def _short(labels: Sequence[str]) -> str:
    names = [label.replace(" (encrypted)", "") for label in labels]
    names = [n for n in names if n != "ChangeCipherSpec"] or names
    if len(names) == 1:
        return names[0]
    return f"{names[0]} … {names[-1]}"


def _flights(capture: Capture, delay: float, offset: float, until: float) -> list[Flight]:
    """Group the capture's records into flights, up to the end of the handshake (``until``)."""
    flights: list[Flight] = []
    run: list[Any] = []

    def close_run() -> None:
        if run:
            flights.append(
                Flight(
                    direction=run[0].direction,
                    sent=offset + run[0].t,
                    arrived=offset + run[-1].t + delay,
                    label=_short([e.label for e in run]),
                    size=sum(e.size for e in run),
                )
            )

    # The client's last flight leaves at the very moment its handshake completes; the
    # server's next records (a ticket, a close) cannot leave before that flight reached
    # it, one delay later. So records sent more than half a delay after "done" are not
    # part of the handshake.
    slack = max(delay / 2, 0.002)
    for event in capture.events(strict=False):
        if offset + event.t > until + slack:
            break
        if run and event.direction != run[0].direction:
            close_run()
            run = []
        run.append(event)
    close_run()
    return flights


def _wait_for_ticket(tls: ssl.SSLSocket, timeout: float) -> ssl.SSLSession | None:
    """Read until a TLS 1.3 NewSessionTicket has been processed (RFC 8446 §4.6.1).

    In TLS 1.3 the ticket is a *post-handshake* message: it arrives after the handshake
    is over, and OpenSSL only processes it when the application reads. So we read
    (there is no data; we expect "want read") until the session has a ticket.
    """
    deadline = time.monotonic() + timeout
    tls.setblocking(False)
    while True:
        try:
            tls.recv(1)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            return None
        session = tls.session
        if session is not None and session.has_ticket:
            return session
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        select.select([tls], [], [], min(remaining, 0.05))


def measure_connection(
    relay: Relay,
    ctx: ssl.SSLContext,
    server_hostname: str,
    *,
    name: str,
    session: ssl.SSLSession | None = None,
    want_ticket: bool = False,
    want_session: bool = False,
    timeout: float = 10.0,
) -> tuple[Timing, ssl.SSLSession | None]:
    """One connection through ``relay``: returns its :class:`Timing` (and a session if asked).

    ``want_ticket``: wait for a TLS 1.3 NewSessionTicket, which arrives after the handshake.
    ``want_session``: take the session as it is when the handshake ends (TLS 1.2 sends its
    ticket, or a session ID, inside the handshake, RFC 5077 §3.3).
    """
    index = len(relay.captures)
    start = time.monotonic()
    try:
        sock = socket.create_connection(relay.address, timeout=timeout)
    except OSError as exc:
        raise ConnectionProblem(
            f"Could not connect to the relay at {relay.address[0]}:{relay.address[1]}: {exc}.",
            "Is the relay still running?",
        ) from exc
    connected = time.monotonic()
    ticket = None
    try:
        with ctx.wrap_socket(
            sock, server_hostname=server_hostname, session=session, do_handshake_on_connect=False
        ) as tls:
            tls.do_handshake()
            done = time.monotonic()
            version, resumed = tls.version(), tls.session_reused
            if want_ticket:
                ticket = _wait_for_ticket(tls, timeout=4 * relay.delay + 1.0)
            elif want_session:
                ticket = tls.session
    except (ssl.SSLError, OSError) as exc:
        raise ConnectionProblem(
            f"The {name} through the relay failed: {exc}.",
            "Check that the target speaks this TLS version and that cafile= trusts it.",
        ) from exc
    # The relay records each chunk from its own thread; wait until it has seen this
    # connection close, so the capture holds every byte (the last flight included).
    try:
        relay.wait(index + 1, timeout=timeout)
    except TimeoutError as exc:
        raise ConnectionProblem(
            f"The relay did not see the {name} connection close within {timeout:g} s.",
            "Is the server keeping connections open after the client closed?",
        ) from exc
    capture = relay.captures[index]
    # The relay's clock starts when it accepts, right after our connect() returned.
    offset = connected - start
    timing = Timing(
        name=name,
        version=version,
        resumed=bool(resumed),
        delay=relay.delay,
        connect=connected - start,
        handshake=done - connected,
        flights=_flights(capture, relay.delay, offset, until=done - start),
        capture=capture,
    )
    return timing, ticket


def measure_timeline(
    target: TargetLike,
    delay: float = 0.05,
    *,
    server_hostname: str | None = None,
    cafile: str | PathLike[str] | None = None,
    timeout: float = 10.0,
) -> list[Timing]:
    """Measure full and resumed TLS 1.2 and TLS 1.3 handshakes to ``target`` through a relay.

    ``target`` is ``"host:port"``, ``(host, port)`` or a URL of a server that speaks both
    TLS 1.2 and 1.3 (the lab's ``valid`` scenario does). ``delay`` is added in *each*
    direction, so one round trip costs ``2 * delay``. ``cafile`` is the CA to trust
    (``lab.ca_bundle``); ``server_hostname`` defaults to the target's host.

    Draw the result with :func:`helpers.plots.handshake_timeline`.
    """
    t = parse_target(target)
    hostname = server_hostname or t.host
    ctx12 = _client_context(ssl.TLSVersion.TLSv1_2, cafile)
    ctx13 = _client_context(ssl.TLSVersion.TLSv1_3, cafile)
    # The target is the caller's own choice, so a real host is allowed here; the Relay
    # still asks for live mode (helpers.live.require) before it connects anywhere real.
    with Relay((t.host, t.port), delay=delay, label="timeline", allow_remote=True) as relay:
        full12, session12 = measure_connection(
            relay,
            ctx12,
            hostname,
            name="TLS 1.2 full handshake",
            want_session=True,
            timeout=timeout,
        )
        if session12 is None:
            raise ConnectionProblem(
                "The server gave the TLS 1.2 connection no session to resume.",
                "Use a server with session tickets or a session cache (the lab's 'valid' has both).",
            )
        resumed12, _ = measure_connection(
            relay, ctx12, hostname, name="TLS 1.2 resumed", session=session12, timeout=timeout
        )
        full13, ticket = measure_connection(
            relay,
            ctx13,
            hostname,
            name="TLS 1.3 full handshake",
            want_ticket=True,
            timeout=timeout,
        )
        if ticket is None:
            raise ConnectionProblem(
                "The server sent no TLS 1.3 session ticket, so resumption cannot be measured.",
                "Use a server with session tickets on (the lab's 'valid' scenario has them).",
            )
        resumed, _ = measure_connection(
            relay, ctx13, hostname, name="TLS 1.3 resumed", session=ticket, timeout=timeout
        )
    return [full12, resumed12, full13, resumed]
