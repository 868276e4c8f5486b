"""Addresses on a classroom network: the teacher's own, and how URLs write them (notebook 02).

:func:`local_addresses` tells the teacher what students should type when the lab listens
on every interface; :func:`_plain` turns an IPv4 client seen on a dual-stack socket
(``::ffff:10.0.0.5``) back into ``10.0.0.5``; :func:`_url_host` puts an IPv6 address in
brackets, as URLs require (RFC 3986 §3.2.2). Both sides of the join use them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys

from ...errors import OfflineViolation


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, the one on the default route first.

    Printed by the CLI, so the teacher knows what students should type when the lab
    listens on every interface (``0.0.0.0``). Two tricks, neither of which sends a packet:

    * ``connect()`` on a UDP socket only asks the kernel for a route; the source address
      it would use is then ``getsockname()`` (192.0.2.1 is TEST-NET-1, RFC 5737);
    * on Linux, ``SIOCGIFADDR`` asks each interface for its address.

    No host name is looked up: on a classroom network without DNS that could hang.
    """
    found: list[str] = []
    with contextlib.suppress(OSError, OfflineViolation):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.append(probe.getsockname()[0])
    if sys.platform.startswith("linux"):
        import fcntl
        import struct

        siocgifaddr = 0x8915
        with contextlib.suppress(OSError):
            for _index, ifname in socket.if_nameindex():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    try:
                        packed = fcntl.ioctl(
                            s.fileno(), siocgifaddr, struct.pack("256s", ifname.encode()[:15])
                        )
                    except OSError:
                        continue  # an interface without an IPv4 address
                    found.append(socket.inet_ntoa(packed[20:24]))
    return [a for a in dict.fromkeys(found) if not ipaddress.ip_address(a).is_loopback]


def _plain(address: str) -> str:
    """``::ffff:10.0.0.5`` (an IPv4 client on a dual-stack socket) -> ``10.0.0.5``."""
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
    return address


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
