"""The lab description: what the join endpoint serves, what a student takes from it (notebook 02).

``GET /lab.json`` on the teacher's join endpoint returns a signed envelope
(:mod:`helpers.lab.remote.signing`) around one JSON object, the same shape as
``python -m helpers.lab --json`` but with the files inlined::

    {"kind": "tls-course-lab", "format": 2, "address": "10.0.0.5",
     "ca_sha256": "3F:2A:...", "ca_pem": PEM, "crl_pem": PEM,
     "chains_pem": {NAME: PEM}, "client_cert_pem": PEM | null, "client_key_pem": PEM | null,
     "scenarios": {NAME: {"url": URL, "host": HOST, "port": PORT, "expect": {...}}}}

The teacher builds it in :meth:`ShareServer.description
<helpers.lab.remote.share.ShareServer.description>`; a student fetches it
(:mod:`helpers.lab.remote.joining`) and reads it here. The student trusts as little of
it as possible: :func:`_scenarios_from` takes only the *port numbers*. Names, addresses
and verdicts come from the student's own copy of the course, so a description cannot
point a name anywhere but at the teacher.

This module also holds the names both sides agree on: the join endpoint's default port
(:data:`SHARE_PORT`), the format number, and the environment variable :data:`LAB_ENV`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import LabError
from ..scenarios import SCENARIOS, Scenario

#: The environment variable that makes :func:`helpers.lab.get_lab` join a teacher's lab.
LAB_ENV = "TLS_COURSE_LAB"
#: Default port of the join endpoint: plain HTTP, and easy to remember in a TLS course (RFC 8446).
SHARE_PORT = 8446
#: Version of the lab description; bumped when its fields change meaning.
#: 2: the description travels inside a signed envelope (helpers/lab/remote/signing.py).
FORMAT = 2
KIND = "tls-course-lab"
MAX_DESCRIPTION = 1024 * 1024  # bytes: a description is ~20 KB; refuse to buffer more


def _text(data: Mapping[str, Any], key: str, url: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise LabError(f"The lab description from {url} has no {key!r}.", "Ask the teacher.")
    return value


def _scenarios_from(
    data: Mapping[str, Any], url: str
) -> tuple[dict[str, Scenario], dict[str, int]]:
    """The scenarios this copy of the course knows, and the teacher's port for each.

    Only the port numbers are taken from the description. Names, addresses and verdicts
    come from this copy of the course, so a description cannot point a name anywhere
    but at the teacher, or make this machine listen anywhere but on loopback.
    """
    raw = data.get("scenarios")
    if not isinstance(raw, dict) or not raw:
        raise LabError(f"The lab description from {url} lists no scenarios.", "Ask the teacher.")
    scenarios: dict[str, Scenario] = {}
    ports: dict[str, int] = {}
    for name, info in raw.items():
        local = SCENARIOS.get(name)
        if local is None or not isinstance(info, dict) or info.get("host") != local.host:
            continue  # added or changed after this copy of the course: skip it
        port = info.get("port")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise LabError(
                f"The lab description from {url} has an invalid port for {name!r}.",
                "Ask the teacher to restart the lab.",
            )
        scenarios[name] = local
        ports[name] = port
    if not scenarios:
        raise LabError(
            f"The lab at {url} has no scenario this copy of the course knows.",
            "Update the course (git pull).",
        )
    return scenarios, ports
