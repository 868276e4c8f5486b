"""The small web pages the lab servers return (introduced in notebook 02).

A client that gets through the handshake receives a page that names the scenario, says
what is wrong with it and what a default client should have decided, and shows what
*this* connection negotiated (protocol, cipher suite, client certificate). ``requests``,
``curl`` and a browser all see the same page; ``/scenario.json`` has the same facts for
programs.
"""

from __future__ import annotations

import html
import json
import re

from . import wheel
from .scenarios import Scenario
from .server import Request, Response

__all__ = ["app_for"]

_SIMPLE_CONTENT_TYPE = "text/html; charset=utf-8"  # PEP 691 keeps HTML valid for PEP 503 pages


def _normalise(name: str) -> str:
    # PEP 503: lower case, and every run of "-", "_", "." is one "-".
    return re.sub(r"[-_.]+", "-", name).lower()


def _package_index(path: str) -> Response | None:
    """The simple index (PEP 503) on the ``valid`` site, or None for any other path.

    A project page answers under any spelling that normalises to the project's name
    (``/simple/TLS_Course.Hello/``); PEP 503 allows that as well as a redirect.
    """
    if path in ("/simple", "/simple/"):
        return Response(200, wheel.index_page(), _SIMPLE_CONTENT_TYPE)
    if path.startswith("/simple/"):
        project = path[len("/simple/") :].removesuffix("/")
        if "/" not in project and _normalise(project) == wheel.PROJECT:
            return Response(200, wheel.file_page(), _SIMPLE_CONTENT_TYPE)
        return None
    if path == f"/files/{wheel.FILENAME}":
        return Response(200, wheel.wheel_bytes(), "application/octet-stream")
    return None


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}"
    "th{text-align:left;padding-right:1em;vertical-align:top}code{background:#f3f3f3}"
)


def _connection_facts(request: Request) -> dict[str, str]:
    tls = request.tls
    if tls is None:
        return {}
    facts = {"protocol": tls.version() or "?"}
    cipher = tls.cipher()
    if cipher:
        facts["cipher suite"] = cipher[0]
    peer = tls.getpeercert()
    if peer:
        subject = ", ".join("=".join(pair) for rdn in peer.get("subject", ()) for pair in rdn)
        facts["your client certificate"] = subject or "(no subject)"
    return facts


def _page(scenario: Scenario, request: Request) -> bytes:
    e = html.escape
    rows = [
        ("what is wrong", e(scenario.problem)),
        ("a default Python client", f"<code>{e(scenario.expect.describe())}</code>"),
        ("a browser", e(scenario.browser)),
    ]
    if scenario.badssl:
        rows.append(("badssl.com twin", f"<code>{e(scenario.badssl)}</code>"))
    if scenario.fix:
        rows.append(("the fix", e(scenario.fix)))
    for key, value in _connection_facts(request).items():
        rows.append((f"this connection: {key}", f"<code>{e(value)}</code>"))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{e(scenario.name)}: {e(scenario.title)}</title><style>{_STYLE}</style>"
        f"<h1>{e(scenario.title)}</h1><p>TLS course lab, scenario <code>{e(scenario.name)}</code>"
        f" on <code>{e(scenario.host)}</code>.</p><table>{table}</table>"
        f"<p>You are reading this page, so your client accepted the connection.</p></html>\n"
    )
    return body.encode()


def app_for(scenario: Scenario):
    """The request handler for one scenario's port."""
    index = scenario.name == wheel.SCENARIO  # also a package index (notebook 09)
    if index:
        wheel.wheel_bytes()  # built once, when the lab starts (the bytes are cached)

    def app(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"<!doctype html><title>405</title><h1>Only GET and HEAD</h1>\n")
        path = request.target.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return Response(200, _page(scenario, request))
        if path == "/scenario.json":
            data = {
                "name": scenario.name,
                "title": scenario.title,
                "problem": scenario.problem,
                "expect": scenario.expect.as_json(),
                "connection": _connection_facts(request),
            }
            return Response(200, json.dumps(data).encode(), "application/json")
        if index and (answer := _package_index(path)) is not None:
            return answer
        return Response(404, b"<!doctype html><title>404</title><h1>Not found</h1>\n")

    return app
