"""The loopback port forward for the one lab scenario that has no name (notebook 02).

``ip-san`` is "a certificate for the IP address you typed": 127.0.0.1. A hosts table
can point a *name* at the teacher, but no table can move an *address*, and on a
student's machine 127.0.0.1 is the student's own machine. So :class:`~helpers.lab.RemoteLab`
forwards it, like ``ssh -L``: :class:`_Forwarder` listens on the student's 127.0.0.1, on a
port the student's system picks (port 0), and passes every byte to the teacher's port
unchanged. Never on the teacher's port number: that number comes from the network, and a
description must not decide which local port this machine holds (a local service that
starts later could not bind it, and local clients of that service would reach the lab). TLS runs end to end through it (the
forwarder sees only ciphertext), the certificate still names the address the client
typed, and every helper that treats loopback as "the lab, not the internet" stays right.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class _Forwarder:
    """A loopback TCP port that passes every byte to one remote address (like ``ssh -L``).

    One listening socket on ``listen`` (``RemoteLab`` passes port 0), one accept thread,
    and per connection two threads that copy one direction each. TLS runs end to end
    through it: the forwarder sees only ciphertext and changes nothing. ``stop()`` closes
    every socket, which ends every thread.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], timeout: float) -> None:
        self.target, self.timeout = target, timeout
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.bind(listen)
            self._listener.listen(64)
        except BaseException:
            self._listener.close()
            raise
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tls-lab-forward", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        # Closing a socket from another thread does not wake a blocking accept() (Linux
        # keeps it waiting), so wait in short slices and look at the stop flag in between.
        self._listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=self.timeout)
        except OSError:
            client.close()  # the client sees its connection closed, as if refused late
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see lab/server.py
        with self._lock:
            self._open |= {client, upstream}
        back = threading.Thread(target=self._copy, args=(upstream, client), daemon=True)
        back.start()
        self._copy(client, upstream)
        back.join()
        with self._lock:
            self._open -= {client, upstream}
        client.close()
        upstream.close()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # a reset, or stop() closed the socket
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end of the stream on

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
