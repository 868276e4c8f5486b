"""The student's first step: the join URL, and the GET of the lab description (notebook 02).

A student types what the teacher shows: ``http://10.0.0.5:8446/#3F2A9B1C77D0E4A5``,
``10.0.0.5:8446`` or just ``10.0.0.5``. :func:`_parse_source` turns any of them into a
:class:`_Source` (host, port, the path of the description, and the fingerprint after
``#``, which never leaves the student's machine). :func:`_fetch` then asks for the
description with :mod:`http.client` and checks that it *is* one (HTTP 200, at most
:data:`~helpers.lab.remote.description.MAX_DESCRIPTION` bytes, JSON of the right kind and
format). It also returns the numeric address the connection reached: every lab name is
mapped to that address, whatever the teacher's lab thinks its address is.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ...errors import ConnectionProblem, LabError, UsageError
from .addresses import _plain, _url_host
from .description import FORMAT, KIND, MAX_DESCRIPTION, SHARE_PORT
from .fingerprint import _expected_fingerprint

JOIN_TIMEOUT = 5.0  # seconds to connect to the teacher and read the description


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
    if not path.endswith(".json"):
        path = path.rstrip("/") + "/lab.json"
    url = f"http://{_url_host(parts.hostname)}:{port}{parts.path or '/'}"
    return _Source(url, parts.hostname, port, path, _expected_fingerprint(parts.fragment))


def _fetch(source: _Source, timeout: float) -> tuple[dict[str, Any], str]:
    """GET the description; return it and the numeric address we reached the teacher on."""
    hint = (
        "Check the address and port the teacher shows, that you are on the same network, "
        "and that the teacher's lab is running."
    )
    # http.client, not urllib: no proxy from the environment may stand between a
    # student and the classroom (a proxy would see and could change the answer).
    conn = http.client.HTTPConnection(source.host, source.port, timeout=timeout)
    try:
        conn.request("GET", source.path, headers={"Accept": "application/json"})
        peer = _plain(conn.sock.getpeername()[0]) if conn.sock is not None else source.host
        response = conn.getresponse()
        body = response.read(MAX_DESCRIPTION + 1)
    except ConnectionRefusedError:
        raise ConnectionProblem(
            f"Nothing answers at {source.url}: the teacher's lab is not running there.", hint
        ) from None
    except TimeoutError:
        raise ConnectionProblem(
            f"{source.url} did not answer within {timeout:g} s.", hint
        ) from None
    except socket.gaierror:
        raise ConnectionProblem(
            f"The name {source.host!r} could not be resolved.",
            "Use the teacher's IP address, as the teacher's screen shows it.",
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectionProblem(
            f"Could not read the lab description from {source.url}: "
            f"{getattr(exc, 'strerror', None) or exc}.",
            hint,
        ) from None
    finally:
        conn.close()
    not_a_lab = "Check the URL: it is the one `python -m helpers.lab --share` prints."
    if response.status != 200:
        raise LabError(
            f"{source.url} answered HTTP {response.status}, not a lab description.", not_a_lab
        )
    if len(body) > MAX_DESCRIPTION:
        raise LabError(f"{source.url} sent more than a lab description.", not_a_lab)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise LabError(f"{source.url} is not a TLS course lab.", not_a_lab)
    if data.get("format") != FORMAT:
        raise LabError(
            f"The teacher's lab speaks description format {data.get('format')!r}; "
            f"this copy of the course knows format {FORMAT}.",
            "Update the older copy of the course (git pull) and restart.",
        )
    return data, peer
