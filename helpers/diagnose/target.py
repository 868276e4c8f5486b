"""What :func:`~helpers.diagnose.check` connects to (introduced in notebook 02).

A target is a URL (``https://expired.lab.localhost:8443/``), ``host:port`` (the port
defaults to 443) or the name of a lab scenario (``"expired"``). Before any packet leaves,
two questions are settled here:

* **May this name be looked up at all?** Names under ``.invalid`` never resolve
  (RFC 6761 §6.4), and lab names (``*.lab.localhost``) are answered only by
  :mod:`helpers.names` while a lab runs: neither is ever sent to DNS.
* **Does a running lab serve it?** Then its CA is the default trust store for the check,
  as ``cafile=lab.ca_bundle`` would make it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import LabError, UsageError

if TYPE_CHECKING:
    from ..lab import Lab


@dataclass(frozen=True)
class _Target:
    text: str
    host: str
    port: int
    path: str
    url: str


def _parse_target(target: str) -> _Target:
    if not isinstance(target, str) or not target.strip():
        raise UsageError(
            f"check() needs a URL or host[:port], not {target!r}.",
            "For example check('https://valid.lab.localhost:8443/') or check('example.com:443').",
        )
    text = target.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
    except ValueError as exc:  # "Invalid IPv6 URL", a netloc that NFKC turns into a URL
        raise UsageError(
            f"{text!r} is not a URL this check can read ({exc}).",
            "Write it as https://host:port/ (an IPv6 address in brackets: https://[::1]:8443/).",
        ) from None
    if parts.scheme not in ("", "https"):
        raise UsageError(
            f"{text!r} is not an https:// URL, so there is no TLS to check.",
            "Use https://... or host:port.",
        )
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise UsageError(f"{text!r} has an invalid port ({exc}).", "Ports are 1-65535.") from exc
    try:
        host = parts.hostname
    except ValueError as exc:
        raise UsageError(
            f"{text!r} has a host this check cannot read ({exc}).", _WRITE_IT
        ) from None
    if not host:
        raise UsageError(f"{text!r} has no host name.", _WRITE_IT)
    _check_host_name(text, host)
    shown = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(text, host, port, path, f"https://{shown}:{port}{path}")


_WRITE_IT = "Write it as https://host:port/."
_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # the full stops IDNA splits labels at


def _check_host_name(text: str, host: str) -> None:
    """Refuse a host name no resolver or TLS client could use, before anything is sent.

    ``ssl`` turns the server name into its ASCII form with Python's ``idna`` codec (and
    ``socket`` does the same for a non-ASCII name), which refuses an empty label
    (``a..b``) and a label over 63 characters (RFC 1035 §2.3.4) with a bare
    ``UnicodeError``. Those are mistakes in the call, so they get a sentence here.
    """
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return  # an address literal: no labels to check
    except ValueError:
        pass
    labels = _DOTS.split(host)
    if labels and labels[-1] == "":
        labels.pop()  # one trailing dot is the DNS root, allowed
    if "" in labels:
        raise UsageError(
            f"{text!r} has an empty label in its host name (two dots in a row, or a leading dot).",
            "Remove the extra dot: a host name is labels joined by single dots.",
        )
    try:
        host.encode("idna")
    except UnicodeError as exc:
        longest = max(labels, key=len)
        if len(longest) > 63:
            raise UsageError(
                f"{text!r} has a host-name label of {len(longest)} characters; DNS allows "
                "at most 63 (RFC 1035 §2.3.4).",
                "Check the name: a label is the part between two dots.",
            ) from None
        raise UsageError(
            f"{text!r} has a host name that cannot be written in ASCII for DNS ({exc}).",
            "Check the name for stray characters (an xn-- label over 63 characters is too long too).",
        ) from None


def _is_never_resolvable(host: str) -> str | None:
    """Why ``host`` must not be looked up at all, or ``None`` if it may be.

    RFC 6761 §6.4: names under ``.invalid`` never resolve, and resolvers should answer
    "no such name" without asking anyone. Lab names (``*.lab.localhost``) are answered
    only by :mod:`helpers.names` while a lab runs; outside that they must not reach DNS.
    """
    name = host.rstrip(".").lower()
    if name == "invalid" or name.endswith(".invalid"):
        return (
            f"{host!r} is under .invalid, which never resolves (RFC 6761 §6.4); no lookup was made."
        )
    from .. import names

    try:
        names.refuse_unserved(host)
    except LabError as exc:
        return str(exc)
    return None


def _running_lab() -> Lab | None:
    """The lab :func:`helpers.lab.get_lab` started in this process, if any (never starts one)."""
    from ..lab import running_lab

    return running_lab()


def _lab_for(host: str, port: int, lab: Lab | None) -> Lab | None:
    """The lab that serves ``host:port``, so its CA can be the default trust store."""
    from .. import names

    candidate = lab if lab is not None else _running_lab()
    if candidate is None:
        return None
    if names.is_lab_name(host):
        return candidate
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_loopback and port in _lab_ports(candidate):
        return candidate
    return None


def _lab_ports(lab: Lab) -> set[int]:
    return {lab.port(name) for name in lab.scenarios} if lab.running else set()


def _looks_like_scenario(target: str) -> bool:
    # A scenario name may contain dots ("tls-1.0-only"), so ask the table first; anything
    # with a scheme, port or path separator is a URL or an address, never a scenario.
    if not target or any(c in target for c in ":/[]"):
        return False
    try:
        from ..lab import SCENARIOS
    except ImportError:
        return False
    return target in SCENARIOS
