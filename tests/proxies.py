"""A real HTTP CONNECT proxy on 127.0.0.1 for the live-mode and fetch tests (RFC 9110 §9.3.6)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Proxy:
    """A running test proxy: its URL, and the CONNECT lines it was sent, in order."""

    url: str
    seen: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[object]:  # ``as (url, seen)``
        return iter((self.url, self.seen))


def _loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761 §6.3
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _relay(a: socket.socket, b: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := a.recv(65536):
            b.sendall(chunk)
    with contextlib.suppress(OSError):
        b.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def connect_proxy(upstream_port: int | None = None, answer: bytes | None = None) -> Iterator[Proxy]:
    """Start a CONNECT proxy; stop it on exit.

    * ``answer``: reply with these bytes and close (a 407, say) instead of tunnelling.
    * ``upstream_port``: like a proxy at the edge of a company network, resolve every requested
      name itself, here to 127.0.0.1:``upstream_port``, so a public-looking name reaches a
      loopback test server without any DNS.
    * neither: tunnel to the requested host:port, which must be on loopback (a test proxy never
      opens a connection off this machine).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = Proxy(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            proxy.seen.append(line)
            if answer is not None:
                conn.sendall(answer)
                return
            host, _, port = line.split()[1].rpartition(":")
            if upstream_port is not None:
                host, port = "127.0.0.1", str(upstream_port)
            if not _loopback(host):
                return  # refuse: the test proxy only tunnels to loopback
            with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=_relay, args=(upstream, conn), daemon=True)
                back.start()
                _relay(conn, upstream)
                back.join(5)

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(2)
        listener.close()
