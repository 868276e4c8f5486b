"""Record the bytes of a TLS connection (introduced in notebook 01; decoded in notebook 06).

Theory of operation
-------------------
Wireshark shows a TLS handshake by sniffing packets. We do the same thing from inside
Python, in two ways, and both give you a :class:`Capture`: a list of :class:`Chunk`
objects, each a run of bytes that went one way (``"c2s"`` client→server or ``"s2c"``
server→client) at a time ``t`` (seconds since the capture started).

1. :func:`capture_memory` runs a client and a server **in the same thread** with no
   sockets at all. ``ssl.SSLContext.wrap_bio`` gives an ``SSLObject`` that reads its
   input from one :class:`ssl.MemoryBIO` and writes its output to another. We call
   ``do_handshake()`` on each side in turn; each call either finishes or raises
   ``SSLWantReadError`` ("I wrote what I could, now I need the peer's answer"). After
   every call we move whatever one side wrote into the other side's input and record
   it. This is the TLS state machine with the network removed: deterministic (the same
   messages in the same order every time) and fast.

2. :class:`Relay` is a small TCP proxy on 127.0.0.1: point any client (``requests``,
   ``openssl s_client``, a browser) at the relay instead of the server and it forwards
   every byte, recording it. It can also **delay** each direction (to feel what round
   trips cost) and **tamper** with bytes (to watch TLS integrity protection catch a
   single flipped bit). One thread runs every connection with a :mod:`selectors`
   reactor and a timer heap, so 100 connections with a 200 ms delay each cost no
   extra threads and do not wait for each other.

A capture is only bytes. :meth:`Capture.events` cuts them into TLS records with the
sans-IO parsers of :mod:`helpers.handshake`, decodes the plaintext handshake messages
and marks what is encrypted: in TLS 1.2, everything after a ChangeCipherSpec in that
direction; in TLS 1.3, every application_data (type 23) record, which is everything
after ServerHello except the compatibility ChangeCipherSpec. The names of encrypted
handshake messages are educated guesses here; :mod:`helpers.tls13` decrypts them.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import html
import itertools
import json
import os
import selectors
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ConnectionProblem, ParseError
from .handshake import (
    Alert,
    ClientHello,
    HandshakeMessage,
    HandshakeParser,
    Record,
    RecordParser,
    ServerHello,
    parse_alert,
    parse_client_hello,
    parse_server_hello,
)

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

Direction = Literal["c2s", "s2c"]
DIRECTIONS: tuple[Direction, Direction] = ("c2s", "s2c")
ARROWS = {"c2s": "client → server", "s2c": "server → client"}

DEFAULT_REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
DEFAULT_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
    b"Connection: close\r\n\r\nhello\n"
)


@dataclass(frozen=True, repr=False)
class Chunk:
    """Bytes that travelled one way, and when (seconds since the capture started)."""

    direction: Direction
    data: bytes
    t: float

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'c2s' or 's2c', not {self.direction!r}")

    def __repr__(self) -> str:
        return f"Chunk({self.direction}, {len(self.data)} bytes, t={self.t * 1000:.1f} ms)"


@dataclass(frozen=True, repr=False)
class Event:
    """One TLS record of a capture, with the handshake messages it completed.

    ``messages`` holds the plaintext handshake messages whose last byte arrived in this
    record (empty for encrypted records and for non-handshake records). ``label`` is a
    human name: ``"ClientHello"``, ``"ServerHello, Certificate, ServerKeyExchange,
    ServerHelloDone"``, ``"ChangeCipherSpec"``, ``"Finished (encrypted)"``,
    ``"application data"``, ``"Alert (fatal, bad_record_mac)"`` ...
    """

    direction: Direction
    t: float
    record: Record
    messages: list[HandshakeMessage]
    encrypted: bool
    label: str

    @property
    def size(self) -> int:
        """Bytes on the wire (record header included)."""
        return 5 + len(self.record.payload)

    @property
    def names(self) -> list[str]:
        """The names of the plaintext handshake messages completed here."""
        return [m.type_name for m in self.messages]

    def __repr__(self) -> str:
        lock = " 🔒" if self.encrypted else ""
        return f"Event({self.direction}, t={self.t * 1000:.1f} ms, {self.label}{lock}, {self.size} bytes)"


# ---------------------------------------------------------------------------
# Capture: bytes each way, and the TLS events they contain
# ---------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items() if _json_ok(v)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value if _json_ok(v)]
    return value


def _json_ok(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool, bytes, bytearray)):
        return True
    if isinstance(value, (dict, list, tuple)):
        return True
    return False  # SSLSession objects and the like stay in memory only


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


class Capture:
    """The bytes of one TLS connection, both ways, in the order they travelled.

    ``chunks`` is a list of :class:`Chunk`; a :class:`Relay` appends to it while the
    connection is live. ``info`` holds what the endpoints reported (negotiated version,
    cipher, the server's certificate in DER, a key log for :mod:`helpers.tls13`, errors).
    """

    def __init__(
        self, chunks: Iterable[Chunk] = (), label: str = "", info: dict[str, Any] | None = None
    ) -> None:
        self.chunks: list[Chunk] = list(chunks)
        self.label = label
        self.info: dict[str, Any] = dict(info or {})

    # --- raw bytes
    def data(self, direction: Direction) -> bytes:
        """Every byte sent one way, concatenated."""
        return b"".join(c.data for c in list(self.chunks) if c.direction == direction)

    @property
    def client_bytes(self) -> bytes:
        return self.data("c2s")

    @property
    def server_bytes(self) -> bytes:
        return self.data("s2c")

    @property
    def duration(self) -> float:
        chunks = list(self.chunks)
        return chunks[-1].t if chunks else 0.0

    def records(self, direction: Direction) -> list[Record]:
        """The complete TLS records sent one way (a trailing partial record is ignored)."""
        return RecordParser().feed(self.data(direction))

    # --- decoded hellos
    def _hellos(self, direction: Direction) -> list[HandshakeMessage]:
        """The plaintext hello-phase messages of one direction, until encryption starts.

        Stops at the first application_data record (TLS 1.3) or at the first handshake
        record after a ChangeCipherSpec once a real ServerHello has been seen (TLS 1.2:
        that record is the encrypted Finished). A HelloRetryRequest does not stop it.
        """
        parser = HandshakeParser()
        messages: list[HandshakeMessage] = []
        try:
            records = self.records(direction)
        except ParseError:
            records = []
        ccs = False
        for record in records:
            if record.content_type == 23:
                break
            if record.content_type == 20:
                ccs = True
            if record.content_type != 22:
                continue
            if (
                ccs
                and direction == "s2c"
                and any(m.msg_type == 2 and m.type_name == "ServerHello" for m in messages)
            ):
                break
            if ccs and direction == "c2s" and len([m for m in messages if m.msg_type == 1]) != 1:
                break  # only a second ClientHello (after HelloRetryRequest) follows a CCS
            messages += parser.feed(record.payload)
        return messages

    @property
    def client_hello(self) -> ClientHello | None:
        """The first ClientHello, decoded; None if there is none."""
        hellos = self.client_hellos
        return hellos[0] if hellos else None

    @property
    def client_hellos(self) -> list[ClientHello]:
        """Every ClientHello (two after a HelloRetryRequest)."""
        hellos = []
        for message in self._hellos("c2s"):
            if message.msg_type == 1:
                try:
                    hellos.append(parse_client_hello(message.body, offset=message.offset + 4))
                except ParseError:
                    break
        return hellos

    def _server_hellos(self) -> list[ServerHello]:
        hellos = []
        for message in self._hellos("s2c"):
            if message.msg_type == 2:
                try:
                    hellos.append(parse_server_hello(message.body, offset=message.offset + 4))
                except ParseError:
                    break
        return hellos

    @property
    def server_hello(self) -> ServerHello | None:
        """The ServerHello (not a HelloRetryRequest), decoded; None if there is none."""
        for hello in self._server_hellos():
            if not hello.is_hello_retry_request:
                return hello
        return None

    @property
    def hello_retry_request(self) -> ServerHello | None:
        for hello in self._server_hellos():
            if hello.is_hello_retry_request:
                return hello
        return None

    @property
    def version(self) -> str | None:
        """Negotiated version (``"TLSv1.3"``): ServerHello's supported_versions, else legacy_version."""
        hello = self.server_hello
        return hello.version if hello is not None else None

    @property
    def cipher_suite(self) -> str | None:
        hello = self.server_hello
        return hello.cipher_suite_name if hello is not None else None

    # --- events
    def events(self, *, strict: bool = True) -> list[Event]:
        """Cut both directions into records and label them (see the module docstring).

        Raises :class:`ParseError` if a direction is not TLS (plain HTTP, garbage). With
        ``strict=False`` that direction just stops producing events, and the error is
        kept in ``self.info["parse_error"]``.
        """
        events, error = self._events(strict)
        if error is not None:
            self.info["parse_error"] = error
        return events

    def _events(self, strict: bool) -> tuple[list[Event], str | None]:
        error = None
        chunks = list(self.chunks)
        tls13 = self.version == "TLSv1.3"
        parsers = {d: RecordParser() for d in DIRECTIONS}
        handshakes = {d: HandshakeParser() for d in DIRECTIONS}
        ccs_seen = {d: False for d in DIRECTIONS}
        encrypted_handshakes = {d: 0 for d in DIRECTIONS}
        broken: set[str] = set()
        client_encrypted = False  # TLS 1.3: has the client sent its encrypted Finished yet?
        server_flight: list[int] = []  # TLS 1.3: indexes of the server's encrypted flight
        events: list[Event] = []
        for chunk in chunks:
            d = chunk.direction
            if d in broken:
                continue
            try:
                records = parsers[d].feed(chunk.data)
            except ParseError as exc:
                if strict:
                    raise
                broken.add(d)
                error = f"{ARROWS[d]}: {exc}"
                continue
            for record in records:
                ctype = record.content_type
                messages: list[HandshakeMessage] = []
                encrypted = ctype == 23 or (ccs_seen[d] and not tls13)
                if ctype == 20:
                    encrypted = False
                    label = "ChangeCipherSpec"
                    if not tls13:
                        ccs_seen[d] = True
                elif ctype == 21 and not encrypted:
                    label, encrypted = _alert_label(record)
                elif not encrypted and ctype == 22:
                    messages = handshakes[d].feed(record.payload)
                    names = [m.type_name for m in messages]
                    if handshakes[d].pending_type is not None:
                        names.append(f"{_pending_name(handshakes[d])} (fragment)")
                    label = ", ".join(names) or "handshake (empty)"
                elif ctype == 24:
                    label = "Heartbeat"
                elif tls13 and ctype == 23:
                    if d == "s2c" and not client_encrypted:
                        server_flight.append(len(events))
                        label = "encrypted handshake"
                    elif d == "c2s" and not client_encrypted:
                        client_encrypted = True
                        label = "Finished (encrypted)"
                    else:
                        label = "application data"
                elif ctype == 22:
                    encrypted_handshakes[d] += 1
                    label = (
                        "Finished (encrypted)"
                        if encrypted_handshakes[d] == 1
                        else "encrypted handshake"
                    )
                elif ctype == 21:
                    label = "Alert (encrypted)"
                else:
                    label = "application data"
                events.append(Event(d, chunk.t, record, messages, encrypted, label))
        for index, label in zip(server_flight, _flight_labels(len(server_flight)), strict=True):
            e = events[index]
            events[index] = Event(e.direction, e.t, e.record, e.messages, e.encrypted, label)
        return events, error

    # --- display
    def __repr__(self) -> str:
        label = f"{self.label!r}, " if self.label else ""
        version = self.version or "no ServerHello"
        return (
            f"Capture({label}{version}, {len(self.chunks)} chunks, "
            f"{len(self.client_bytes)} bytes c2s / {len(self.server_bytes)} bytes s2c)"
        )

    def _repr_html_(self) -> str:
        title = html.escape(self.label or "Capture")
        head = (
            "<tr><th>#</th><th>t (ms)</th><th>direction</th><th>record</th>"
            "<th>bytes</th><th>contents</th><th>encrypted</th></tr>"
        )
        events, error = self._events(strict=False)
        rows = []
        if events or not self.chunks:
            for i, e in enumerate(events):
                rows.append(
                    f"<tr><td>{i}</td><td>{e.t * 1000:.1f}</td><td>{ARROWS[e.direction]}</td>"
                    f"<td>{html.escape(e.record.type_name)}</td><td>{e.size}</td>"
                    f"<td style='text-align:left'>{html.escape(e.label)}</td>"
                    f"<td>{'🔒 yes' if e.encrypted else 'no'}</td></tr>"
                )
        else:  # not TLS (plain HTTP, say): show the bytes themselves
            head = "<tr><th>#</th><th>t (ms)</th><th>direction</th><th>bytes</th><th>data</th></tr>"
            for i, c in enumerate(list(self.chunks)):
                text = html.escape(c.data[:200].decode("latin-1")) + (
                    "…" if len(c.data) > 200 else ""
                )
                rows.append(
                    f"<tr><td>{i}</td><td>{c.t * 1000:.1f}</td><td>{ARROWS[c.direction]}</td>"
                    f"<td>{len(c.data)}</td><td style='text-align:left'><pre>{text}</pre></td></tr>"
                )
        summary = f"{html.escape(self.version or 'not TLS / no ServerHello')}"
        if self.cipher_suite:
            summary += f", {html.escape(self.cipher_suite)}"
        note = f"<p>{html.escape(error)}</p>" if error else ""
        return (
            f"<table class='tls-capture'><caption style='text-align:left'><b>{title}</b>: "
            f"{summary}</caption>{head}{''.join(rows)}</table>{note}"
        )

    # --- saving
    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (bytes as hex); :meth:`from_dict` reverses it."""
        return {
            "format": "tls-course-capture/1",
            "label": self.label,
            "chunks": [
                {"direction": c.direction, "t": c.t, "data": c.data.hex()}
                for c in list(self.chunks)
            ],
            "info": _to_json(self.info),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Capture:
        chunks = [
            Chunk(c["direction"], bytes.fromhex(c["data"]), float(c["t"])) for c in data["chunks"]
        ]
        return cls(chunks, data.get("label", ""), _from_json(data.get("info", {})))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the capture as JSON (e.g. into ``data/``)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Capture:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _pending_name(parser: HandshakeParser) -> str:
    from .handshake import HANDSHAKE_TYPES

    pending = parser.pending_type
    return HANDSHAKE_TYPES.get(pending, f"message type {pending}") if pending is not None else "?"


def _alert_label(record: Record) -> tuple[str, bool]:
    try:
        alert: Alert = parse_alert(record.payload)
    except ParseError:
        return "Alert (encrypted)", True
    return f"Alert ({alert.level_name}, {alert.description_name})", False


def _flight_labels(n: int) -> list[str]:
    """Best guesses for the records of a TLS 1.3 server's encrypted flight.

    OpenSSL writes one record per message: EncryptedExtensions, [CertificateRequest],
    Certificate, CertificateVerify, Finished; a resumed (PSK) handshake has only
    EncryptedExtensions and Finished. Other stacks pack the flight into fewer records.
    """
    guesses = {
        1: ["EncryptedExtensions…Finished"],
        2: ["EncryptedExtensions", "Finished"],
        4: ["EncryptedExtensions", "Certificate", "CertificateVerify", "Finished"],
        5: [
            "EncryptedExtensions",
            "CertificateRequest",
            "Certificate",
            "CertificateVerify",
            "Finished",
        ],
    }
    if n in guesses:
        return [f"{name} (encrypted)" for name in guesses[n]]
    if n == 0:
        return []
    middle = ["encrypted handshake"] * (n - 2)
    return ["EncryptedExtensions… (encrypted)", *middle, "…Finished (encrypted)"]


# ---------------------------------------------------------------------------
# capture_memory: a client and a server in one thread, no sockets
# ---------------------------------------------------------------------------


def _drain(obj: ssl.SSLObject) -> tuple[bytes, ssl.SSLError | None]:
    """Read application data until the SSLObject needs more bytes."""
    out = bytearray()
    while True:
        try:
            data = obj.read(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return bytes(out), None
        except ssl.SSLZeroReturnError:
            return bytes(out), None
        except ssl.SSLError as exc:
            return bytes(out), exc
        if not data:
            return bytes(out), None
        out += data


def capture_memory(
    client_ctx: ssl.SSLContext,
    server_ctx: ssl.SSLContext,
    server_hostname: str | None = "localhost",
    request: bytes | None = DEFAULT_REQUEST,
    response: bytes | None = DEFAULT_RESPONSE,
    *,
    close: bool = True,
    session: ssl.SSLSession | None = None,
    keylog: bool = True,
    check: bool = True,
    label: str = "",
    max_steps: int = 50,
) -> Capture:
    """Run a whole TLS connection in memory and return its :class:`Capture`.

    The client (``client_ctx``, connecting to ``server_hostname``) and the server
    (``server_ctx``) take turns; every flight is recorded as a :class:`Chunk`. After the
    handshake the client sends ``request`` and the server answers ``response`` (either
    may be None), then both send close_notify (unless ``close=False``).

    ``capture.info`` records what the endpoints saw: ``version``, ``cipher``, ``alpn``,
    ``server_certificate`` (DER), ``session_reused``, ``session`` (pass it back as
    ``session=`` to watch a resumption; TLS 1.3 tickets arrive with the ``response``),
    ``request_received``, ``response_received`` and, with ``keylog=True``, ``keylog``:
    the NSS key log text that :mod:`helpers.tls13` needs to decrypt the capture.

    If the handshake fails, the alert is recorded too; with ``check=True`` (default)
    the client's (or server's) :class:`ssl.SSLError` is raised with the capture attached
    as ``exc.capture``, with ``check=False`` the capture is returned with
    ``info["error"]``.
    """
    start = time.perf_counter()
    chunks: list[Chunk] = []
    info: dict[str, Any] = {"server_hostname": server_hostname, "transport": "memory"}
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))

    keylog_ctx = None
    keylog_dir = None
    if keylog:
        keylog_ctx = next((c for c in (client_ctx, server_ctx) if c.keylog_filename is None), None)
        if keylog_ctx is not None:
            keylog_dir = tempfile.TemporaryDirectory(prefix="tls-course-keylog-")
            keylog_ctx.keylog_filename = os.path.join(keylog_dir.name, "keylog.txt")

    def flush() -> bool:
        moved = False
        for direction, source, sink in (("c2s", c_out, s_in), ("s2c", s_out, c_in)):
            data = source.read()
            if data:
                chunks.append(Chunk(direction, data, time.perf_counter() - start))
                sink.write(data)
                moved = True
        return moved

    errors: dict[str, ssl.SSLError] = {}
    try:
        client = client_ctx.wrap_bio(
            c_in, c_out, server_side=False, server_hostname=server_hostname, session=session
        )
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        sides = {"client": client, "server": server}
        done = {"client": False, "server": False}
        for _ in range(max_steps):
            for name, obj in sides.items():
                if done[name] or errors:
                    continue
                try:
                    obj.do_handshake()
                    done[name] = True
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except ssl.SSLError as exc:
                    errors[name] = exc
                flush()
            if errors or all(done.values()):
                break
        if errors:
            # Let the other side read the alert the failing side just wrote.
            for name, obj in sides.items():
                if name in errors:
                    continue
                try:
                    obj.do_handshake() if not done[name] else obj.read(1)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLZeroReturnError):
                    pass
                except ssl.SSLError as exc:
                    errors[name] = exc
                flush()
        elif not all(done.values()):
            raise ConnectionProblem(
                f"The in-memory handshake did not finish in {max_steps} steps.",
                "Check that the two contexts can agree on a version and a cipher.",
            )
        else:
            if request is not None:
                client.write(request)
                flush()
                info["request_received"], err = _drain(server)
                if err is not None:
                    errors["server"] = err
                flush()
            if response is not None and not errors:
                server.write(response)
                flush()
            if not errors:
                # Read the response (and, in TLS 1.3, the session tickets that came first).
                info["response_received"], err = _drain(client)
                if err is not None:
                    errors["client"] = err
                flush()
            if close and not errors:
                for obj in (client, server, client):
                    with contextlib.suppress(ssl.SSLError):
                        obj.unwrap()
                    flush()
        info.update(_endpoint_info(client, server))
    finally:
        if keylog_ctx is not None and keylog_dir is not None:
            keylog_ctx.keylog_filename = None  # type: ignore[assignment]
            with contextlib.suppress(OSError):
                info["keylog"] = Path(keylog_dir.name, "keylog.txt").read_text()
            keylog_dir.cleanup()

    if errors:
        info["error"] = "; ".join(f"{name}: {exc}" for name, exc in errors.items())
        for name, exc in errors.items():
            info[f"{name}_error"] = str(exc)
    capture = Capture(chunks, label, info)
    if errors:
        if check:
            first = errors.get("client") or next(iter(errors.values()))
            first.capture = capture  # type: ignore[attr-defined]
            raise first
    return capture


def _endpoint_info(client: ssl.SSLObject, server: ssl.SSLObject) -> dict[str, Any]:
    info: dict[str, Any] = {}
    with contextlib.suppress(ssl.SSLError, ValueError):
        info["version"] = client.version()
        info["cipher"] = client.cipher()
        info["alpn"] = client.selected_alpn_protocol()
        info["server_certificate"] = client.getpeercert(binary_form=True)
        info["client_certificate"] = server.getpeercert(binary_form=True)
        info["session_reused"] = client.session_reused
        info["session"] = client.session
    return info


# ---------------------------------------------------------------------------
# A ready-made tamper hook
# ---------------------------------------------------------------------------


def flip_record_byte(
    direction: Direction = "s2c", content_type: int = 23, occurrence: int = 0, position: int = -1
) -> Callable[[str, bytes, int], bytes]:
    """A tamper hook for :class:`Relay` that flips one bit of one TLS record.

    It follows the record framing of ``direction`` and XORs ``0x01`` into byte
    ``position`` of the payload of the ``occurrence``-th record of ``content_type``
    (default: the last byte, part of the AEAD tag, of the first application_data record
    the server sends). The receiver's decryption fails: ``bad_record_mac``.
    """
    stream = bytearray()
    done = False

    def hook(chunk_direction: str, data: bytes, index: int) -> bytes:
        nonlocal done
        if chunk_direction != direction or done:
            return data
        start = len(stream)
        stream.extend(data)
        offset, seen = 0, 0
        while offset + 5 <= len(stream):
            ctype = stream[offset]
            length = int.from_bytes(stream[offset + 3 : offset + 5], "big")
            if ctype == content_type:
                if seen == occurrence:
                    if length == 0:
                        return data
                    target = offset + 5 + (position % length)
                    if start <= target < len(stream):
                        out = bytearray(data)
                        out[target - start] ^= 0x01
                        done = True
                        return bytes(out)
                    return data
                seen += 1
            offset += 5 + length
        return data

    return hook


# ---------------------------------------------------------------------------
# Relay: a recording, delaying, tampering TCP proxy on loopback
# ---------------------------------------------------------------------------

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_BACKPRESSURE = 1 << 20  # stop reading a side while 1 MiB waits to be written to the other


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


class Relay:
    """A recording TCP relay on loopback: ``client → relay → target``.

    >>> with Relay(target=("127.0.0.1", server_port), delay=0.05) as relay:
    ...     requests.get(f"https://localhost:{relay.port}/", verify=...)
    ...     relay.wait()
    ...     relay.captures[0].events()

    ``delay`` (seconds) is added to each direction, so a round trip costs at least
    ``2 * delay`` (the TCP handshake with the relay itself is answered by the kernel
    and is not delayed). ``tamper(direction, data, index) -> bytes`` may rewrite each
    chunk before it is forwarded (``index`` counts chunks in that direction); the
    capture records what was forwarded, and ``info["tampered"]`` lists what changed.
    One :class:`Capture` per accepted connection is appended to ``captures`` as soon
    as the connection arrives, and fills up live.
    """

    def __init__(
        self,
        target: tuple[str, int],
        delay: float = 0.0,
        bind: str = "127.0.0.1",
        *,
        tamper: Callable[[str, bytes, int], bytes] | None = None,
        label: str = "relay",
        backlog: int = 512,
    ) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0 seconds")
        self.target = (target[0], int(target[1]))
        self.delay = float(delay)
        self.tamper = tamper
        self.label = label
        self.captures: list[Capture] = []
        self._links: dict[int, _Link] = {}  # by id()
        self._sockets: dict[int, tuple[_Link, str]] = {}  # fd → (link, "client"/"upstream")
        self._timers: list[tuple[float, int, _Pipe, _Link]] = []
        self._seq = itertools.count()
        self._finished = threading.Condition()
        self._done_count = 0
        self._stopping = threading.Event()
        self._closed = False
        infos = socket.getaddrinfo(self.target[0], self.target[1], type=socket.SOCK_STREAM)
        self._family, _, _, _, self._target_address = infos[0]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.bind((bind, 0))  # port 0: the OS picks a free port
            self._listener.listen(backlog)
            self._listener.setblocking(False)
        except BaseException:
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()
            self._selector.close()
            raise
        self._selector.register(self._wake_r, _READ, None)
        self._selector.register(self._listener, _READ, "listener")
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.port}", daemon=True)
        self._thread.start()

    # --- public surface
    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[Capture]:
        """Block until ``count`` connections have closed; return the captures."""
        deadline = time.monotonic() + timeout
        with self._finished:
            while self._done_count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"only {self._done_count} of {count} relayed connections closed"
                    )
                self._finished.wait(left)
        return list(self.captures)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, close every socket. Idempotent."""
        if self._closed:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout)
        self._closed = True
        for link in list(self._links.values()):
            self._close_link(link, reason="relay stopped")
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._closed else f"listening on {self.address[0]}:{self.port}"
        return f"Relay({state} → {self.target[0]}:{self.target[1]}, delay={self.delay}s, {len(self.captures)} connections)"

    # --- the reactor
    def _run(self) -> None:
        while not self._stopping.is_set():
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for key, mask in self._selector.select(timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                elif key.data == "listener":
                    self._accept()
                else:
                    link, role = key.data
                    if link.closed:
                        continue
                    try:
                        self._ready(link, role, mask)
                    except Exception as exc:  # noqa: BLE001 - isolation: one broken connection only
                        self._close_link(link, reason=f"relay error: {exc!r}")
            self._fire_timers()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                client, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                upstream = socket.socket(self._family, socket.SOCK_STREAM)
            except OSError:  # out of file descriptors: refuse this one, keep serving
                client.close()
                continue
            for sock in (client, upstream):
                _nodelay(sock)
                sock.setblocking(False)
            number = len(self.captures)
            capture = Capture(
                label=f"{self.label} #{number}",
                info={
                    "transport": "relay",
                    "client": list(peer[:2]),
                    "target": list(self.target),
                    "delay": self.delay,
                    "closed": False,
                },
            )
            link = _Link(client, upstream, capture)
            self.captures.append(capture)
            self._links[id(link)] = link
            err = upstream.connect_ex(self._target_address)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                self._close_link(link, reason=f"connect to target failed: {os.strerror(err)}")
                continue
            self._register(link)

    def _register(self, link: _Link) -> None:
        for role, sock in (("client", link.client), ("upstream", link.upstream)):
            mask = self._mask(link, role)
            fd = sock.fileno()
            old = link.masks.get(fd, 0)
            if mask == old:
                continue
            if old == 0:
                self._selector.register(sock, mask, (link, role))
            elif mask == 0:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, mask, (link, role))
            link.masks[fd] = mask

    def _mask(self, link: _Link, role: str) -> int:
        if role == "upstream" and link.connecting:
            return _WRITE
        out_pipe = link.pipes["c2s" if role == "client" else "s2c"]  # this socket is its src
        in_pipe = link.pipes["s2c" if role == "client" else "c2s"]  # this socket is its dst
        mask = 0
        if not out_pipe.read_eof and out_pipe.pending < _BACKPRESSURE:
            mask |= _READ
        if in_pipe.out or (in_pipe.eof_due and not in_pipe.shut):
            mask |= _WRITE
        return mask

    def _ready(self, link: _Link, role: str, mask: int) -> None:
        if role == "upstream" and link.connecting:
            err = link.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close_link(link, reason=f"connect to target failed: {os.strerror(err)}")
                return
            link.connecting = False
            self._flush(link, link.pipes["c2s"])
            if not link.closed:
                self._register(link)
            return
        if mask & _READ:
            self._read(link, link.pipes["c2s" if role == "client" else "s2c"])
        if not link.closed and mask & _WRITE:
            self._flush(link, link.pipes["s2c" if role == "client" else "c2s"])
        if not link.closed:
            self._register(link)

    def _read(self, link: _Link, pipe: _Pipe) -> None:
        try:
            data = pipe.src.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # reset by peer: treat as the end of this direction
            link.capture.info.setdefault("resets", []).append(f"{pipe.direction}: {exc}")
            data = b""
        now = time.monotonic()
        if data:
            index = pipe.chunks
            pipe.chunks += 1
            if self.tamper is not None:
                original = data
                data = bytes(self.tamper(pipe.direction, data, index))
                if data != original:
                    link.capture.info.setdefault("tampered", []).append(
                        {"direction": pipe.direction, "index": index, "original": original}
                    )
            if not data:
                return
            link.capture.chunks.append(Chunk(pipe.direction, data, now - link.start))
        else:
            pipe.read_eof = True
        pipe.queue.append((now + self.delay, data or None))
        pipe.queued += len(data)
        if self.delay == 0:
            self._release(link, pipe, now)
        else:
            heapq.heappush(self._timers, (now + self.delay, next(self._seq), pipe, link))

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, pipe, link = heapq.heappop(self._timers)
            if not link.closed:
                self._release(link, pipe, now)
                if not link.closed:
                    self._register(link)

    def _release(self, link: _Link, pipe: _Pipe, now: float) -> None:
        """Move what is due from the delay queue to the output buffer, and write."""
        while pipe.queue and pipe.queue[0][0] <= now:
            _, data = pipe.queue.popleft()
            if data is None:
                pipe.eof_due = True
            else:
                pipe.queued -= len(data)
                pipe.out += data
        if not (link.connecting and pipe.direction == "c2s"):
            self._flush(link, pipe)

    def _flush(self, link: _Link, pipe: _Pipe) -> None:
        while pipe.out:
            try:
                sent = pipe.dst.send(pipe.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._close_link(link, reason=f"{pipe.direction} send failed: {exc}")
                return
            del pipe.out[:sent]
        if pipe.eof_due and not pipe.shut:
            pipe.shut = True
            with contextlib.suppress(OSError):
                pipe.dst.shutdown(socket.SHUT_WR)  # pass the FIN on
            if all(p.shut for p in link.pipes.values()):
                self._close_link(link)

    def _close_link(self, link: _Link, reason: str | None = None) -> None:
        if link.closed:
            return
        link.closed = True
        self._links.pop(id(link), None)
        for sock in (link.client, link.upstream):
            if link.masks.get(sock.fileno(), 0) and not self._closed:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(sock)
            sock.close()
        if reason:
            link.capture.info["error"] = reason
        link.capture.info["closed"] = True
        with self._finished:
            self._done_count += 1
            self._finished.notify_all()
