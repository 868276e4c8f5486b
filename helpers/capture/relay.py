"""A recording, delaying, tampering TCP relay on loopback: :class:`Relay` (notebook 01).

:class:`Relay` is a small TCP proxy on 127.0.0.1: point any client (``requests``,
``openssl s_client``, a browser) at the relay instead of the server and it forwards
every byte, recording it in one :class:`~helpers.capture.Capture` per connection. It can
also **delay** each direction (to feel what round trips cost, :mod:`helpers.timing`) and
**tamper** with bytes (to watch TLS integrity protection catch a single flipped bit,
:mod:`helpers.capture.tamper`). The relay knows nothing of TLS: it moves bytes.

One thread runs every connection with a :mod:`selectors` reactor and a timer heap, so
100 connections with a 200 ms delay each cost no extra threads and do not wait for each
other. The loop in :meth:`Relay._run`:

* waits until a socket is ready or the earliest timer is due (never longer);
* accepts new clients and starts a non-blocking ``connect()`` to the target for each;
* reads what is ready into the pipes of :mod:`helpers.capture.pipes` and pushes a timer
  for when it is due;
* releases due bytes and writes what the kernel will take.

Each socket is registered only for the events it can use right now (``_mask``): a
socket whose peer is not draining its bytes is no longer read (1 MiB of backpressure),
and a socket is watched for writing only while bytes wait for it. A second socket pair
wakes the loop when :meth:`Relay.stop` is called from another thread.

Fenced like the other demo servers (:func:`helpers.servers.require_loopback_bind`): the
relay listens on loopback and forwards to loopback or a lab server, unless the caller
passes ``allow_network=True`` / ``allow_remote=True`` (the second also needs live mode).
A lab name is looked up only in the running lab's table (:mod:`helpers.names`): with no
lab running it is a :class:`~helpers.errors.LabError`, and it never reaches DNS.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable

from .. import names
from ..errors import UsageError
from ..servers import require_local_upstream, require_loopback_bind
from .chunks import Chunk
from .pipes import _Link, _nodelay, _Pipe
from .recording import Capture

__all__ = ["Relay"]

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_BACKPRESSURE = 1 << 20  # stop reading a side while 1 MiB waits to be written to the other


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

    ``bind`` must be loopback unless ``allow_network=True``, which is dangerous: anyone
    on the network could then use this notebook as a proxy to ``target`` and have
    their traffic recorded. ``target`` must be loopback or a lab server; a real host
    needs ``allow_remote=True`` and live mode (:func:`helpers.live.require`), so no
    cell forwards bytes to the internet by accident. At most :attr:`max_connections`
    are relayed at once (two file descriptors each); more are closed on arrival and
    counted in :attr:`turned_away`.
    """

    #: Connections relayed at once; more are closed as they arrive.
    max_connections: int = 256

    def __init__(
        self,
        target: tuple[str, int],
        delay: float = 0.0,
        bind: str = "127.0.0.1",
        *,
        tamper: Callable[[str, bytes, int], bytes] | None = None,
        label: str = "relay",
        backlog: int = 512,
        allow_network: bool = False,
        allow_remote: bool = False,
    ) -> None:
        if delay < 0:
            raise UsageError(f"delay must be >= 0 seconds, not {delay}.", "Pass 0 for no delay.")
        require_loopback_bind(bind, allow_network=allow_network, what="The Relay")
        require_local_upstream(str(target[0]), allow_remote=allow_remote, what="The Relay")
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
        #: Connections closed on arrival because :attr:`max_connections` were open.
        self.turned_away = 0
        # A lab name is answered by a lab running in this process, never by DNS: with no
        # lab (or a name it does not serve) say so before the resolver is asked.
        names.refuse_unserved(self.target[0])
        try:
            infos = socket.getaddrinfo(self.target[0], self.target[1], type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UsageError(
                f"The Relay cannot resolve its target {self.target[0]!r} ({exc.strerror}).",
                "Check the name; a lab name resolves only while its lab runs.",
            ) from None
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
        except BaseException as exc:
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()
            self._selector.close()
            if isinstance(exc, OSError):
                raise UsageError(
                    f"The Relay cannot listen on {bind!r} ({exc.strerror or exc}).",
                    "Use 127.0.0.1: an address this machine owns.",
                ) from None
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
            if len(self._links) >= self.max_connections:
                client.close()  # turned away: no upstream socket, no capture
                self.turned_away += 1
                continue
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
