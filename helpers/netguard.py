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
  Unix sockets;
* resolving ``localhost`` (answered by /etc/hosts, RFC 6761 §6.3) and numeric
  addresses (no DNS query is needed for ``"127.0.0.1"``).

Anything else, a public address or a name that would need a DNS server, raises
:class:`~helpers.errors.OfflineViolation`. Lab names such as
``expired.lab.localhost`` are answered by :mod:`helpers.names` *before* the real
``getaddrinfo`` runs, so if one of them ever reaches the guard, something leaked.

Audit hooks cannot be removed, so :func:`install` adds the hook once and
:func:`uninstall` only switches it off. The tests install it for pytest, and an
IPython startup file installs it in every kernel that runs a notebook under test.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

from .errors import OfflineViolation

_hook_added = False
_active = False


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


def may_connect(address: Any) -> bool:
    """True when ``address`` (as passed to ``socket.connect``) stays on this machine."""
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    if isinstance(address, tuple) and address:
        host = _as_text(address[0])
        if host is None:
            return False
        if host.lower() == "localhost":
            return True
        ip = _ip(host)
        return ip is not None and _is_loopback(ip)
    return True  # netlink and other local families


def _refuse(action: str, target: Any) -> None:
    raise OfflineViolation(
        f"Blocked an attempt to {action} {target!r}: the offline guard allows loopback only.",
        "Use the local lab (helpers.lab), or turn live mode on outside the tests.",
    )


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active or not event.startswith("socket."):
        return
    if event == "socket.getaddrinfo":
        if not may_resolve(args[0]):
            _refuse("resolve", _as_text(args[0]))
    elif event in ("socket.gethostbyname", "socket.gethostbyname_ex"):
        if not may_resolve(args[0]):
            _refuse("resolve", _as_text(args[0]))
    elif event == "socket.gethostbyaddr":
        ip = _ip(_as_text(args[0]) or "")
        if ip is None or not _is_loopback(ip):
            _refuse("reverse-resolve", args[0])
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if address is not None and not may_connect(address):
            _refuse("connect to", address)
    elif event == "socket.bind":
        address = args[1] if len(args) > 1 else None
        sock = args[0]
        if (
            isinstance(address, tuple)
            and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6)
            and not may_connect(address)
        ):
            _refuse("listen on", address)


def install() -> None:
    """Turn the guard on for this process (idempotent)."""
    global _hook_added, _active
    if not _hook_added:
        sys.addaudithook(_hook)
        _hook_added = True
    _active = True


def uninstall() -> None:
    """Turn the guard off (the hook stays registered but does nothing)."""
    global _active
    _active = False


def active() -> bool:
    """Is the guard on in this process?"""
    return _active
