"""The student's first step: the join URL, and the GET of the lab description (notebook 02).

A student types what the teacher shows: ``http://10.0.0.5:8446/#3F2A9B1C77D0E4A5``,
``10.0.0.5:8446`` or just ``10.0.0.5``. :func:`_parse_source` turns any of them into a
:class:`_Source` (host, port, the path of the description, and the fingerprint after
``#``, which never leaves the student's machine). :func:`_fetch` then asks for the
description within one deadline and checks that the answer is HTTP 200 with at most
:data:`~helpers.lab.remote.description.MAX_DESCRIPTION` bytes; what the bytes say is
checked by :mod:`helpers.lab.remote.signing`. It also returns the numeric address the
connection reached: every lab name is mapped to that address, whatever the teacher's lab
thinks its address is.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...errors import ConnectionProblem, LabError, UsageError
from .addresses import _plain, _url_host
from .description import MAX_DESCRIPTION, SHARE_PORT
from .fingerprint import _expected_fingerprint

JOIN_TIMEOUT = 5.0  # seconds for the whole join: connect, ask, and read the description


@dataclass(frozen=True)
class _Source:
    url: str  # the join URL as given, without the fragment
    host: str
    port: int
    path: str  # of the description
    fingerprint: str | None  # from the fragment, normalised


def _parse_source(text: str) -> _Source:
    """``http://10.0.0.5:8446/#3F2A...``, ``10.0.0.5:8446`` or ``10.0.0.5`` -> parts."""
    raw = (text or "").strip()
    if not raw:
        raise UsageError(
            "No address was given for the teacher's lab.",
            "Pass the URL the teacher shows, e.g. join('http://10.0.0.5:8446/').",
        )
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme != "http":
        raise UsageError(
            f"{text!r} is not an http:// URL.",
            "The join endpoint is plain HTTP (what it serves is public): use http://TEACHER:8446/.",
        )
    try:
        port = parts.port or SHARE_PORT
    except ValueError as exc:
        raise UsageError(f"{text!r} has an invalid port ({exc}).", "Ports are 1-65535.") from exc
    if not parts.hostname:
        raise UsageError(f"{text!r} has no host.", "Write it as http://TEACHER:8446/.")
    path = parts.path or "/"
    if any(not "!" <= ch <= "~" for ch in path):
        raise UsageError(
            f"{text!r} has spaces or other characters a URL path cannot hold.",
            "Copy the URL the teacher shows.",
        )
    if not path.endswith(".json"):
        path = path.rstrip("/") + "/lab.json"
    url = f"http://{_url_host(parts.hostname)}:{port}{parts.path or '/'}"
    return _Source(url, parts.hostname, port, path, _expected_fingerprint(parts.fragment))


def _fetch(source: _Source, timeout: float) -> tuple[bytes, str]:
    """GET the description; return the body and the numeric address we reached the teacher on.

    One deadline, ``timeout`` seconds from now, covers the whole exchange: connecting,
    sending, and every byte of the answer. A per-operation timeout (what
    :mod:`http.client` offers) would let a server that sends one byte every few seconds
    hold the join forever, so this reads in chunks against :func:`time.monotonic`. It
    speaks just enough HTTP/1.1 itself, over a plain socket: no proxy from the
    environment may stand between a student and the classroom (a proxy would see and
    could change the answer).
    """
    deadline = time.monotonic() + timeout
    hint = (
        "Check the address and port the teacher shows, that you are on the same network, "
        "and that the teacher's lab is running."
    )
    late = ConnectionProblem(
        f"{source.url} did not send the lab description within {timeout:g} s.", hint
    )
    not_a_lab = "Check the URL: it is the one `python -m helpers.lab --share` prints."
    request = (
        f"GET {source.path} HTTP/1.1\r\nHost: {_url_host(source.host)}:{source.port}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    received = bytearray()
    try:
        with socket.create_connection((source.host, source.port), timeout=timeout) as sock:
            peer = _plain(sock.getpeername()[0])
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(request)
            while not _complete(received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise late
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if len(received) > MAX_DESCRIPTION + MAX_HEAD:
                    raise LabError(f"{source.url} sent more than a lab description.", not_a_lab)
    except (ConnectionProblem, LabError):
        raise  # already one sentence (ConnectionProblem is an OSError: keep it from below)
    except ConnectionRefusedError:
        raise ConnectionProblem(
            f"Nothing answers at {source.url}: the teacher's lab is not running there.", hint
        ) from None
    except TimeoutError:
        raise late from None
    except socket.gaierror:
        raise ConnectionProblem(
            f"The name {source.host!r} could not be resolved.",
            "Use the teacher's IP address, as the teacher's screen shows it.",
        ) from None
    except OSError as exc:
        raise ConnectionProblem(
            f"Could not read the lab description from {source.url}: {exc.strerror or exc}.",
            hint,
        ) from None
    status, headers, body = _response(bytes(received), source.url)
    if status == 421:  # Misdirected Request: a lab that shares its client key (share.py)
        raise LabError(
            f"{source.url} answers only requests addressed to its IP address, not to the "
            f"name {source.host!r} (it shares its client key: see DNS rebinding).",
            "Join with the IP address the teacher's terminal shows, "
            "e.g. http://10.0.0.5:8446/#3F2A9B1C77D0E4A5.",
        )
    if status != 200:
        raise LabError(f"{source.url} answered HTTP {status}, not a lab description.", not_a_lab)
    length = headers.get("content-length")
    if length is not None and length != str(len(body)):
        raise ConnectionProblem(f"{source.url} sent a truncated lab description.", hint)
    return body, peer


MAX_HEAD = 16 * 1024  # bytes of status line and headers


def _split(data: bytes) -> tuple[bytes, bytes] | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    return (head, body) if sep else None


def _complete(data: bytearray) -> bool:
    """Has the whole answer arrived (headers, and Content-Length bytes of body)?"""
    parts = _split(bytes(data))
    if parts is None:
        return False
    match = re.search(rb"(?im)^content-length:[ \t]*([0-9]+)[ \t]*$", parts[0])
    return match is not None and len(parts[1]) >= int(match.group(1))


def _response(data: bytes, url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of an HTTP/1.x answer (RFC 9112 §4, §5)."""
    not_a_lab = "Check the URL: it is the one `python -m helpers.lab --share` prints."
    parts = _split(data)
    status_line = re.match(rb"HTTP/1\.[01] ([0-9]{3})[ \r]", data)
    if parts is None or status_line is None or len(parts[0]) > MAX_HEAD:
        raise LabError(f"{url} did not answer in HTTP: not a lab's join endpoint.", not_a_lab)
    headers: dict[str, str] = {}
    for line in parts[0].split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name in headers and name in ("content-length", "transfer-encoding"):
            raise LabError(f"{url} sent a malformed answer (two {name} headers).", not_a_lab)
        headers[name] = value.strip()
    if "transfer-encoding" in headers:
        raise LabError(f"{url} sent a chunked answer: not a lab's join endpoint.", not_a_lab)
    return int(status_line.group(1)), headers, parts[1]
