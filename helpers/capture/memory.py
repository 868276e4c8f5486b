"""A whole TLS connection in memory: :func:`capture_memory` (introduced in notebook 05).

:func:`capture_memory` runs a client and a server **in the same thread** with no
sockets at all. ``ssl.SSLContext.wrap_bio`` gives an ``SSLObject`` that reads its input
from one :class:`ssl.MemoryBIO` and writes its output to another. We call
``do_handshake()`` on each side in turn; each call either finishes or raises
``SSLWantReadError`` ("I wrote what I could, now I need the peer's answer"). After every
call we move whatever one side wrote into the other side's input and record it as a
:class:`~helpers.capture.Chunk`. This is the TLS state machine with the network removed:
deterministic (the same messages in the same order every time) and fast.

After the handshake the client sends a request (:data:`DEFAULT_REQUEST`) and the server
answers (:data:`DEFAULT_RESPONSE`), so that TLS 1.3 session tickets and application
data appear in the capture too. With ``keylog=True`` (the default) the secrets are
collected on the way, for :mod:`helpers.tls13` to decrypt the capture with. They stay
in memory: :meth:`Capture.save <helpers.capture.Capture.save>` leaves them out of the
file unless asked (``include_keylog=True``; :mod:`helpers.capture.saving` says why).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import ConnectionProblem
from .chunks import Chunk
from .recording import Capture

__all__ = ["DEFAULT_REQUEST", "DEFAULT_RESPONSE", "capture_memory"]

DEFAULT_REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
DEFAULT_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
    b"Connection: close\r\n\r\nhello\n"
)


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
    the NSS key log text that :mod:`helpers.tls13` needs to decrypt the capture (in
    memory only: ``capture.save()`` leaves it out unless ``include_keylog=True``).

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
