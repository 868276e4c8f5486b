"""The offline guard: loopback only (introduced in notebook 00, used by every test).

Theory of operation
-------------------
Python raises *audit events* (PEP 578) from inside the socket module: every
``socket.connect``, ``socket.getaddrinfo``, ``socket.sendto`` ... calls the hooks
added with :func:`sys.addaudithook` before it does anything. A hook that raises
stops the call. That is a perfect place for a guard, because *every* library
(requests, urllib3, asyncio, ssl) goes through those functions.

The guard allows:

* connecting, binding and sending to loopback addresses (127.0.0.0/8, ::1) and to
  Unix sockets, except port 53: a DNS resolver listening on loopback (systemd's
  127.0.0.53, dnsmasq) forwards the question to the internet;
* resolving ``localhost`` (answered by /etc/hosts, RFC 6761 §6.3) and numeric
  addresses (no DNS query is needed for ``"127.0.0.1"``);
* reverse lookups (``gethostbyaddr``, ``getnameinfo``) of loopback addresses. The
  audit event of ``getnameinfo`` does not carry its flags, so even a harmless
  ``NI_NUMERICHOST`` call on another address is refused: the guard errs on the safe side.

Anything else, a public address or a name that would need a DNS server, raises
:class:`~helpers.errors.OfflineViolation`. Lab names such as
``expired.lab.localhost`` are answered by :mod:`helpers.names` *before* the real
``getaddrinfo`` runs, so if one of them ever reaches the guard, something leaked.

The record
----------
A caller can catch ``OfflineViolation`` (``helpers.diagnose.check`` turns it into
``Diagnosis(kind="blocked")``, a perfectly readable result). So the guard also *writes
down* every attempt it sees, before it raises: :func:`attempts` returns them, and
``install(record=path)`` appends each one to a file as a line of JSON. The notebook
tests read that file after every cell, so a notebook that reached for the network
fails its test and the failure names the cell (``tests/notebooks.py``).

Audit hooks cannot be removed, so :func:`install` adds the hook once and
:func:`uninstall` only switches the *raising* off. The recording stays on: it lives in
the hook itself, which keeps its own references, so switching the guard off with
``uninstall()`` or ``_active = False``, or replacing functions of this module, cannot
hide an attempt. ``uninstall()`` is itself written down.

What a hook cannot see
----------------------
An audit hook only sees Python's ``socket`` module *in this process*: a ``curl`` or
``getent`` started with ``subprocess``, C code called through ``ctypes``, a C library's
own sockets (pyzmq) and ``multiprocessing`` children started with "spawn" all go past
it. That is why the notebook tests also run each kernel in a network namespace whose
only interface is loopback (``unshare -n``): there the kernel itself has no route off
the machine. The guard stays, for its readable error message.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import OfflineViolation

_hook_added = False
_active = False

#: The port DNS servers listen on (RFC 1035 §4.2).
_DNS_PORT = 53


@dataclass(frozen=True)
class Attempt:
    """One thing the guard saw: ``action`` (e.g. ``"resolve"``) on ``target``.

    ``blocked`` is False when the guard had been switched off and let it through.
    """

    action: str
    target: str
    blocked: bool = True

    def __str__(self) -> str:
        how = "blocked" if self.blocked else "NOT blocked: the guard had been switched off"
        return f"{self.action} {self.target} ({how})"


class _Record:
    """Where attempts go: a bounded list in memory, and the files given to ``install``."""

    def __init__(self) -> None:
        self.seen: collections.deque[Attempt] = collections.deque(maxlen=10_000)
        self.files: list[int] = []

    def add(self, attempt: Attempt, _write: Callable[[int, bytes], int] = os.write) -> None:
        self.seen.append(attempt)
        line = (json.dumps(asdict(attempt)) + "\n").encode()
        for fd in self.files:
            try:
                _write(fd, line)  # O_APPEND: one write() per line, whole lines even from forks
            except OSError:
                pass  # a full disk must not break the learner's cell; the line is lost


def _as_text(host: Any) -> str | None:
    if host is None:
        return None
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return str(host)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip("[]").split("%", 1)[0]  # [::1] and fe80::1%lo
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def may_resolve(host: Any) -> bool:
    """True when looking up ``host`` cannot send a query to a DNS server."""
    text = _as_text(host)
    if text is None or text == "":
        return True  # getaddrinfo(None, port): the local wildcard, no lookup
    if text.lower().rstrip(".") == "localhost":
        return True  # answered from /etc/hosts
    return _ip(text) is not None  # numeric: parsed, never looked up


def may_reverse_resolve(address: Any) -> bool:
    """True when a reverse lookup of ``address`` is answered on this machine (loopback)."""
    ip = _ip(_as_text(address) or "")
    return ip is not None and _is_loopback(ip)


def may_connect(address: Any) -> bool:
    """True when ``address`` (as passed to ``socket.connect``) stays on this machine."""
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    if isinstance(address, tuple) and address:
        host = _as_text(address[0])
        if host is None:
            return False
        if len(address) > 1 and address[1] == _DNS_PORT:
            return False  # a resolver on loopback forwards the query off the machine
        if host.lower() == "localhost":
            return True
        ip = _ip(host)
        return ip is not None and _is_loopback(ip)
    return True  # netlink and other local families


def _judge(event: str, args: tuple[Any, ...]) -> tuple[str, str] | None:
    """``(action, target)`` when this audit event would leave the machine, else None."""
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        if not may_resolve(args[0]):
            return "resolve", repr(_as_text(args[0]))
    elif event == "socket.gethostbyaddr":
        if not may_reverse_resolve(args[0]):
            return "reverse-resolve", repr(args[0])
    elif event == "socket.getnameinfo":
        # args: (sockaddr,). Its host is always numeric (CPython parses it with
        # AI_NUMERICHOST); turning it back into a name is what can ask a DNS server.
        sockaddr = args[0]
        host = sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else sockaddr
        if not may_reverse_resolve(host):
            return "reverse-resolve", repr(sockaddr)
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if address is not None and not may_connect(address):
            return "connect to", repr(address)
    elif event == "socket.bind":
        address = args[1] if len(args) > 1 else None
        sock = args[0]
        if (
            isinstance(address, tuple)
            and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6)
            and not may_connect(address[:1] + (0,) + address[2:])  # any port of ours is fine
        ):
            return "listen on", repr(address)
    return None


def _refusal(attempt: Attempt) -> OfflineViolation:
    return OfflineViolation(
        f"Blocked an attempt to {attempt.action} {attempt.target}: the offline guard allows loopback only.",
        "Use the local lab (helpers.lab), or turn live mode on outside the tests.",
    )


def _make_hook(record: _Record) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook, with its own references to what it needs.

    They are bound here, once: assigning to this module's attributes later (a cell doing
    ``netguard._judge = ...`` or ``netguard._active = False``) cannot stop the recording.
    """
    judge, add, refusal, module = _judge, record.add, _refusal, sys.modules[__name__]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not event.startswith("socket."):
            return
        found = judge(event, args)
        if found is None:
            return
        attempt = Attempt(*found, blocked=bool(module._active))
        add(attempt)  # first write it down, then (maybe) raise
        if attempt.blocked:
            raise refusal(attempt)

    return hook


_record = _Record()


def install(record: str | os.PathLike[str] | None = None) -> None:
    """Turn the guard on for this process (idempotent).

    ``record``: a file to which every attempt is appended as one line of JSON (created
    0600 if missing). The notebook tests pass one per kernel.
    """
    global _hook_added, _active
    if record is not None:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        _record.files.append(fd)
        _record.add(Attempt("install", "the offline guard", blocked=False))
    if not _hook_added:
        sys.addaudithook(_make_hook(_record))
        _hook_added = True
    _active = True


def uninstall() -> None:
    """Turn the guard off: attempts go through, but are still recorded (and so is this call)."""
    global _active
    _record.add(Attempt("switch off", "the offline guard", blocked=False))
    _active = False


def active() -> bool:
    """Is the guard on in this process?"""
    return _active


def attempts() -> list[Attempt]:
    """Every network attempt the guard saw in this process (the last 10,000), caught or not."""
    return [a for a in _record.seen if a.action not in ("install", "switch off")]
