"""Serving connections safely: listen, accept, cap, time out, hang up (introduced in notebook 01).

The course's small servers (the lab's side servers :mod:`helpers.lab.tls12_legacy` and
:mod:`helpers.lab.truncating`, the CONNECT proxy :mod:`helpers.lab.proxy`, the man in the
middle :mod:`helpers.mitm`, the login site :mod:`helpers.servers`) each speak a different
protocol, but they receive connections the same way. That shared part lives here, so
each server's own module is only about what it says. Notebook 01's login site uses its
small functions; notebook 09 reads :class:`ThreadedServer` whole, under the lab's side
servers.

Theory of operation
-------------------
One thread accepts; each accepted connection gets a thread of its own that runs a short
sequence of blocking steps (handshake, read a request, answer). That is the easiest
design to read, and it is safe only with limits, because every connection holds a
thread and a file descriptor until it ends. A lab shared with a room
(``lab --share``) is reachable by everyone in it, so each limit names what it stops:

* **loopback binds** (strangers). A server made to be attacked, or to collect
  passwords, listens on 127.0.0.1 unless its caller passes ``allow_network=True``
  (:func:`helpers.servers.require_loopback_bind`); :func:`listen` picks the address
  family and lets the OS choose the port (port 0).
* **a total connection cap** (thread and descriptor exhaustion): at most
  ``max_connections`` at once. Past it, :class:`ThreadedServer` either closes the new
  connection on arrival (no thread is started for it) or, with ``fair_eviction``,
  hangs up the oldest connection of the address that holds the most.
* **a cap per client address** (one student taking every slot): at most
  ``max_per_address`` from one address; fair eviction reaches the same goal another
  way, since a flooding machine only ever evicts its own connections.
* **an idle timeout per read and an absolute deadline per connection** (slowloris): a
  timeout alone bounds each ``recv``, so a client sending one byte every few seconds
  would keep its thread forever; :meth:`ThreadedServer.read_timeout` gives each read
  what is left of the connection's deadline, never more than the idle timeout.
* **a pause after a failed accept** (a busy loop): when the process is out of
  descriptors (EMFILE) the listening socket stays readable and ``accept()`` keeps
  failing; :func:`accept` waits a moment instead of spinning at 100 % CPU.
* **hanging up every open connection on stop()** (threads that outlive the server):
  :func:`hang_up` wakes a thread blocked in ``recv`` with an end of file, so ``stop()``
  can join every thread and free the port at once.
* **quiet errors** (a traceback wall in a lesson, or a client that crashes the
  server): whatever one connection does ends that connection only, as one line in the
  server's :attr:`~ThreadedServer.log`.

Two small courtesies complete it. ``TCP_NODELAY`` (:func:`set_nodelay`): a server that
writes each TLS flight or answer in one ``send`` gains nothing from Nagle's algorithm,
which would hold small segments back for up to one round trip. And
:func:`linger_close`: closing a socket with unread bytes in it makes the kernel send a
TCP reset, which can destroy our last answer (an alert, an error page) before the
client reads it (RFC 9112 §9.6); so we half-close, read and drop what still arrives for
a moment, then close.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Self

from .errors import UsageError

__all__ = [
    "Service",
    "ThreadedServer",
    "accept",
    "hang_up",
    "linger_close",
    "listen",
    "set_nodelay",
]

#: Connections the kernel queues before ``accept()`` (socketserver's default is 5: a
#: client opening many at once would see SYNs dropped and wait a 1 s retransmit).
BACKLOG = 64
#: How often an accept loop looks at its stop flag (seconds).
ACCEPT_POLL = 0.1
#: How long an accept loop waits after ``accept()`` failed (EMFILE and friends).
ACCEPT_PAUSE = 0.05


def listen(host: str, port: int, *, what: str, hint: str | None = None) -> socket.socket:
    """A listening TCP socket on ``(host, port)`` whose ``accept()`` times out every
    :data:`ACCEPT_POLL` seconds, or :class:`~helpers.errors.UsageError` naming ``what``.

    Call :func:`helpers.servers.require_loopback_bind` first: this function binds
    wherever it is told.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        raise UsageError(
            f"{what} cannot listen on {host!r} port {port} ({exc.strerror or exc}).",
            hint or "Use port 0 (the OS picks a free one) and an address this machine owns.",
        ) from None
    listener.settimeout(ACCEPT_POLL)
    return listener


def accept(listener: socket.socket) -> tuple[socket.socket, tuple[str, int]] | None:
    """One connection from ``listener``, or None when none came within its timeout or
    ``accept()`` failed (then after a short pause: a failing accept must not spin)."""
    try:
        sock, peer = listener.accept()
    except TimeoutError:
        return None
    except OSError:
        time.sleep(ACCEPT_PAUSE)  # EMFILE and friends: do not spin
        return None
    return sock, (str(peer[0]), int(peer[1]))


def set_nodelay(sock: socket.socket) -> None:
    """Send each write at once (no Nagle delay): our flights and answers are one write each."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def hang_up(sock: socket.socket) -> None:
    """End a connection under another thread's feet: its ``recv`` returns end of file.

    ``socket.socket.shutdown`` on purpose, also for a TLS socket: ``SSLSocket.shutdown``
    would drop the TLS object that the connection's own thread is using (OpenSSL
    objects must never be used by two threads at once). Closing is left to that thread.
    """
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def linger_close(sock: socket.socket, seconds: float, limit: int = 1 << 20) -> None:
    """Close after our last bytes without a TCP reset destroying them (RFC 9112 §9.6).

    Half-close (our FIN follows what we sent; a TLS socket drops its TLS layer, the
    alert or close_notify is already on its way), then read and drop what the peer
    still sends until it hangs up: at most ``seconds`` in all (a deadline, not a
    timeout per read, or a client trickling a byte at a time would keep the thread)
    and ``limit`` bytes. Then close.
    """
    deadline = time.monotonic() + seconds
    try:
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_WR)
            dropped = 0
            while dropped < limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                chunk = sock.recv(65536)  # plain TCP now
                if not chunk:
                    break
                dropped += len(chunk)
    finally:
        with contextlib.suppress(OSError):
            sock.close()


class Service:
    """The life cycle every server here shares: :meth:`start`, :meth:`stop`, ``with``,
    and where it listens (:attr:`address`, :attr:`port`).

    ``with server:`` starts it and stops it at the end of the block, even after an
    error, so a lesson cell never leaves a port open or a thread running.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` it listens on; an error if it is not running."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The port the OS picked (servers here bind port 0)."""
        return self.address[1]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class _Slot:
    address: str  # the client's address, for the per-address cap and fair eviction
    opened: float  # time.monotonic() at accept, for fair eviction


class ThreadedServer(Service):
    """A thread-per-connection server with the limits of the module docstring.

    A subclass says what a connection is about: :meth:`serve` (required) runs one
    connection and returns how it ended, as a short phrase for :attr:`log`; it may
    raise, and :class:`TimeoutError` is logged as "timed out", anything else as
    "internal error (...)", never as a traceback. :meth:`wrap` (optional) turns the
    accepted socket into what :meth:`serve` gets (a TLS socket, say) without I/O.

    ``max_connections`` connections are served at once. Past that a new one is closed
    on arrival, or with ``fair_eviction=True`` the oldest connection of the busiest
    address is hung up to make room; ``max_per_address`` (None: no such cap) closes
    a client's connection on arrival when that address already holds as many. Each
    connection has ``deadline`` seconds in all and ``idle_timeout`` per read
    (:meth:`read_timeout`). ``start()``/``stop()`` or ``with``; :attr:`address`,
    :attr:`port`, :attr:`url`. The subclass checks its bind address first
    (:func:`helpers.servers.require_loopback_bind`).
    """

    #: How the server names itself in errors and threads ("The truncation server").
    what = "The server"
    thread_name = "server"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int,
        max_per_address: int | None = None,
        fair_eviction: bool = False,
        idle_timeout: float,
        deadline: float,
    ) -> None:
        self._bind = (host, port)
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.fair_eviction = fair_eviction
        self.idle_timeout = idle_timeout
        self.deadline = deadline
        #: One line per connection: who and how it ended (the last 200).
        self.log: deque[str] = deque(maxlen=200)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[socket.socket, _Slot] = {}
        self._workers: set[threading.Thread] = set()

    # -- what a subclass says -------------------------------------------------

    def serve(self, sock: socket.socket, peer: tuple[str, int]) -> str:
        """Run one connection; return how it ended (the server closes ``sock`` after)."""
        raise NotImplementedError

    def wrap(self, sock: socket.socket) -> socket.socket:
        """The socket :meth:`serve` gets; no I/O here (the accept thread runs it)."""
        return sock

    def read_timeout(self, end: float) -> float:
        """The timeout for the next read of a connection whose deadline is ``end``
        (``time.monotonic()``); :class:`TimeoutError` once it has passed or on stop()."""
        remaining = end - time.monotonic()
        if remaining <= 0 or self._stopping.is_set():
            raise TimeoutError
        return min(self.idle_timeout, remaining)

    # -- life cycle -----------------------------------------------------------

    def start(self) -> Self:
        """Listen and start accepting (a second call does nothing)."""
        if self._listener is not None:
            return self
        listener = listen(*self._bind, what=self.what)
        self._stopping.clear()
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_loop, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port, hang up every connection, join the threads (safe twice)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        listener.close()
        with self._lock:
            for sock in self._open:
                hang_up(sock)
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise UsageError(f"{self.what} is not running.", "Call start() or use `with`.")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host = self.address[0]
        return f"https://{f'[{host}]' if ':' in host else host}:{self.port}/"

    # -- connections ----------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            accepted = accept(listener)
            if accepted is None:
                continue
            raw, peer = accepted
            try:
                sock = self.wrap(raw)
            except OSError:  # ssl.SSLError is one
                raw.close()
                continue
            with self._lock:
                refusal = self._admit(sock, peer[0])
                if refusal is None:
                    worker = threading.Thread(
                        target=self._run,
                        args=(sock, peer),
                        name=f"{self.thread_name}-conn",
                        daemon=True,
                    )
                    self._workers.add(worker)
            if refusal is not None:
                sock.close()
                self.log.append(f"{peer[0]}:{peer[1]}: refused, {refusal}")
                continue
            worker.start()

    def _admit(self, sock: socket.socket, address: str) -> str | None:
        """Take ``sock`` into the table, or say why not (lock held)."""
        full = len(self._open) >= self.max_connections
        if full and not self.fair_eviction:
            return f"{self.max_connections} connections already open"
        if self.max_per_address is not None:
            held = sum(slot.address == address for slot in self._open.values())
            if held >= self.max_per_address:
                return f"{self.max_per_address} already open from {address}"
        if full:
            self._evict()
        self._open[sock] = _Slot(address, time.monotonic())
        return None

    def _evict(self) -> None:
        """At the cap: hang up the oldest connection of the address holding the most
        (lock held). Its thread wakes up with an end of file and cleans up."""
        counts: dict[str, int] = {}
        for slot in self._open.values():
            counts[slot.address] = counts.get(slot.address, 0) + 1
        busiest = max(counts, key=lambda address: counts[address])  # first of equals
        victim = min(
            (sock for sock, slot in self._open.items() if slot.address == busiest),
            key=lambda sock: self._open[sock].opened,
        )
        hang_up(victim)
        del self._open[victim]
        self.log.append(f"{busiest}: oldest connection dropped, {self.max_connections} open")

    def _run(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        outcome = "closed"
        try:
            outcome = self.serve(sock, peer)
        except TimeoutError:
            outcome = "timed out"
        except Exception as exc:  # noqa: BLE001 - a lesson's server prints no tracebacks
            outcome = f"internal error ({type(exc).__name__})"
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._open.pop(sock, None)
                self._workers.discard(threading.current_thread())
            # Logged last: a test that saw this line may count on the slot being free.
            self.log.append(f"{peer[0]}:{peer[1]}: {outcome}")
