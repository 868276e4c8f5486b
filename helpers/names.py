"""Lab names such as ``expired.lab.localhost``, resolved to loopback (introduced in notebook 02).

Theory of operation
-------------------
Before a client can open a TCP connection to ``https://expired.lab.localhost:8443/`` it
has to turn the *name* into an *address*. In Python every road leads to one function,
:func:`socket.getaddrinfo`: ``socket.create_connection``, ``requests``/``urllib3``,
``http.client`` and ``asyncio`` all call it. The C library behind it looks in
``/etc/hosts`` first and then asks a DNS server.

RFC 6761 §6.3 reserves ``localhost`` and every name under it for the loopback
interface, and says resolvers *should* answer them locally and never forward them to
DNS. curl and Chromium follow that rule. glibc does not: it knows ``localhost``
(from ``/etc/hosts``) but would send ``expired.lab.localhost`` to a DNS server, which
is both slow and a leak (a name you type should not leave the classroom).

The fix is the same idea as ``/etc/hosts``, scoped to this Python process:

* a small **hosts table** maps each lab name to an address (``127.0.0.1``);
* a **wrapper around** ``socket.getaddrinfo`` (and ``gethostbyname``) looks a name up
  in the table *first*. A lab name found there is answered by asking the real
  ``getaddrinfo`` about the *numeric* address instead, which needs no DNS at all and
  builds exactly the tuples the caller expects;
* a name under ``lab.localhost`` that is **not** in the table fails with the same
  ``socket.gaierror`` a missing name gives, and is still never passed on: lab names
  cannot leak to DNS even by typo;
* **every other name** goes to the real function untouched.

The wrapper is installed only while someone needs it: :class:`helpers.lab.Lab` adds
its names when it starts and removes them when it stops, and :func:`resolving` does
the same for a ``with`` block. Installation is reference counted, so two labs can run
at once. When the table is empty the original functions are put back.

The offline guard (:mod:`helpers.netguard`) watches the *real* ``getaddrinfo``; the
tests check that no lab name ever reaches it.

>>> from helpers import names
>>> with names.resolving({"demo.lab.localhost": "127.0.0.1"}):
...     socket.getaddrinfo("demo.lab.localhost", 443)[0][4]   # doctest: +SKIP
('127.0.0.1', 443)
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "LAB_DOMAIN",
    "is_lab_name",
    "refuse_unserved",
    "add",
    "remove",
    "lookup",
    "lookup_all",
    "table",
    "installed",
    "resolving",
]

#: Every lab name ends with this suffix (a subdomain of ``localhost``, RFC 6761 §6.3).
LAB_DOMAIN = "lab.localhost"

_lock = threading.RLock()
# name -> Counter(address -> how many owners registered it). Reference counts let two
# labs (or a lab and a ``with resolving(...)`` block) share a name safely.
_table: dict[str, Counter[str]] = {}
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname


#: Full stops that IDNA treats as label separators, like "." (UTS #46 §2.3, RFC 3490
#: §3.1): ideographic (U+3002), fullwidth (U+FF0E) and halfwidth ideographic (U+FF61).
_DOTS = ("\u3002", "\uff0e", "\uff61")


def _normalise(host: Any) -> str | None:
    """The name as the resolver will see it: ASCII, lower case, no trailing dot.

    ``socket.getaddrinfo`` sends a non-ASCII name through Python's ``idna`` codec
    before the C resolver sees it, and that codec splits labels at the Unicode full
    stops above and maps fullwidth letters and case (nameprep, RFC 3491). So
    ``"expired.lab.localhost\u3002"`` *is* ``expired.lab.localhost.`` by the time it
    reaches DNS, and it must be recognised as a lab name here, in the same form. A name
    the codec refuses (an empty or over-long label) is mapped the same way by hand
    (NFKC, case folding, Unicode dots), so nothing slips past on a technicality.
    """
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = unicodedata.normalize("NFKC", host).casefold()
            for dot in _DOTS:
                host = host.replace(dot, ".")
    return host.rstrip(".").lower()


def is_lab_name(host: Any) -> bool:
    """True for ``lab.localhost`` and every name under it, however it is spelled.

    Case, trailing dots, fullwidth letters and Unicode full stops do not matter
    (``"ＥＸＰＩＲＥＤ.lab.localhost\u3002"`` is a lab name): see :func:`_normalise`.
    """
    name = _normalise(host)
    return name is not None and (name == LAB_DOMAIN or name.endswith("." + LAB_DOMAIN))


def refuse_unserved(host: Any) -> None:
    """Raise :class:`~helpers.errors.LabError` for a lab name no running lab answers.

    Lab names must never reach DNS. While a lab runs, the wrapper below answers them
    (and refuses unknown ones with ``socket.gaierror``); with *no* lab running there is
    no wrapper at all, so a helper that is about to connect to a host calls this first.
    Anything that is not a lab name passes.
    """
    name = _normalise(host)
    if name is None or not is_lab_name(name) or lookup_all(name):
        return
    from .errors import LabError

    if not table():
        raise LabError(
            f"{str(host)!r} is a lab name, but no lab is running in this process "
            "(lab names are answered by the lab itself and never sent to DNS).",
            "Start one first: lab = helpers.lab.get_lab() (or python -m helpers.lab in a "
            "terminal, then helpers.lab.join(url)).",
        )
    raise LabError(
        f"{str(host)!r} is not one of the running lab's names (lab names are never sent to DNS).",
        "Check the spelling: lab.host('expired') gives the exact name, names.table() lists them all.",
    )


def lookup_all(host: str) -> list[str]:
    """Every address the table gives ``host``, the most recently added first.

    Like a hosts file with two lines for one name: ``getaddrinfo`` returns all of them
    and ``socket.create_connection`` (and urllib3) try each in turn. So two labs bound
    to different loopback addresses can both be reached by the same names.
    """
    name = _normalise(host)
    with _lock:
        entry = _table.get(name or "")
        return list(reversed(entry)) if entry else []


def lookup(host: str) -> str | None:
    """The address the table gives ``host`` (the newest entry), or ``None``."""
    found = lookup_all(host)
    return found[0] if found else None


def table() -> dict[str, str]:
    """A copy of the hosts table: ``{name: address}``, like reading ``/etc/hosts``."""
    with _lock:
        return {name: list(addrs)[-1] for name, addrs in sorted(_table.items()) if addrs}


def installed() -> bool:
    """Is the wrapper currently in place of :func:`socket.getaddrinfo`?"""
    return socket.getaddrinfo is _getaddrinfo


def _not_found(host: str) -> socket.gaierror:
    return socket.gaierror(
        socket.EAI_NONAME,
        f"{host!r} is not in the lab's hosts table (lab names are never sent to DNS)",
    )


def _getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` with the lab's hosts table in front of it."""
    if not is_lab_name(host):
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    name = _normalise(host) or ""
    addresses = lookup_all(name)
    if not addresses:
        raise _not_found(name)
    # Ask the real resolver about each *number*: no DNS query, and it fills in the
    # socket types, protocols and port exactly as it would for any other answer.
    results: list[tuple[Any, ...]] = []
    for address in addresses:
        try:
            results += _real_getaddrinfo(
                address, port, family, type, proto, flags & ~socket.AI_CANONNAME
            )
        except socket.gaierror:
            continue  # e.g. an IPv4 entry when the caller asked for AF_INET6 only
    if not results:
        raise socket.gaierror(socket.EAI_ADDRFAMILY, f"{name!r} has no address of that family")
    if flags & socket.AI_CANONNAME:
        results = [(f, t, p, name, sa) for (f, t, p, _c, sa) in results]
    return results


def _gethostbyname(host: Any) -> str:
    """``socket.gethostbyname`` with the same table in front of it."""
    if not is_lab_name(host):
        return _real_gethostbyname(host)
    address = lookup(_normalise(host) or "")
    if address is None:
        raise _not_found(str(host))
    return address


def _install_locked() -> None:
    global _real_getaddrinfo, _real_gethostbyname
    if socket.getaddrinfo is not _getaddrinfo:
        # Remember whatever is there now (the C function, or another tool's wrapper).
        _real_getaddrinfo = socket.getaddrinfo
        _real_gethostbyname = socket.gethostbyname
        socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]
        socket.gethostbyname = _gethostbyname


def _uninstall_locked() -> None:
    if socket.getaddrinfo is _getaddrinfo:
        socket.getaddrinfo = _real_getaddrinfo
        socket.gethostbyname = _real_gethostbyname


def add(name: str, address: str = "127.0.0.1") -> None:
    """Add a line to the hosts table (``address name``) and make sure the wrapper is in place.

    Only names under ``lab.localhost`` may be added: the table is a lab tool, not a
    way to redirect real sites. ``address`` must be a numeric IP address.
    """
    normal = _normalise(name)
    if not is_lab_name(normal):
        raise ValueError(f"{name!r} is not under {LAB_DOMAIN}; only lab names can be added.")
    ipaddress.ip_address(address)  # ValueError for anything that is not a number
    with _lock:
        _table.setdefault(normal or "", Counter())[address] += 1
        _install_locked()


def remove(name: str, address: str = "127.0.0.1") -> None:
    """Undo one :func:`add`; the wrapper goes away with the last entry."""
    normal = _normalise(name) or ""
    with _lock:
        entry = _table.get(normal)
        if entry is not None and entry[address] > 0:
            entry[address] -= 1
            if entry[address] <= 0:
                del entry[address]
            if not entry:
                del _table[normal]
        if not _table:
            _uninstall_locked()


@contextlib.contextmanager
def resolving(entries: Mapping[str, str]) -> Iterator[None]:
    """Resolve ``entries`` (``{name: address}``) inside a ``with`` block only."""
    added: list[tuple[str, str]] = []
    try:
        for name, address in entries.items():
            add(name, address)
            added.append((name, address))
        yield
    finally:
        for name, address in reversed(added):
            remove(name, address)
