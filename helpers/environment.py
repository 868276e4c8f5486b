"""What this machine brings to the course (introduced in notebook 00).

Two different OpenSSL libraries are at work in the series, and they do not always
agree:

* Python's :mod:`ssl` module uses *the OpenSSL Python was built with*
  (``ssl.OPENSSL_VERSION``): on a Linux distribution's own Python (Debian, Ubuntu,
  Fedora) that is the system's OpenSSL; the python.org installers for Windows and
  macOS, conda and ``uv``'s standalone Pythons bring their own. It does the
  handshakes: ``requests``, ``urllib3``, ``asyncio`` and ``http.client`` all go
  through it.
* ``cryptography`` installed from PyPI ships its *own* OpenSSL inside its wheel (a
  conda-forge ``cryptography`` links conda's, the same one as :mod:`ssl`). It builds
  and parses certificates and keys, and does HKDF and AEAD when we decrypt a handshake
  by hand.

So a policy can differ between them: one may refuse a SHA-1 signature or a
1024-bit key that the other still accepts. When a notebook's result depends on the
version, it says which library decided.
"""

from __future__ import annotations

import html
import platform
import ssl
import sys
from dataclasses import dataclass
from importlib import metadata

#: The packages the course needs at run time, as named on PyPI.
RUNTIME_PACKAGES = (
    "jupyterlab",
    "ipykernel",
    "requests",
    "urllib3",
    "httpx",  # notebook 09: the clients a corporate proxy breaks, one by one
    "aiohttp",
    "truststore",
    "certifi",
    "cryptography",
    "matplotlib",
    "tqdm",
    "ipywidgets",
    "acme",  # notebook 10: the ACME client library behind certbot ...
    "josepy",  # ... and its JOSE (JWS/JWK) library
)


@dataclass
class Row:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """The environment check shown in notebook 00; ``ok`` is False if anything is missing."""

    rows: list[Row]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def __repr__(self) -> str:
        return "\n".join(f"[{'OK' if r.ok else 'FAIL'}] {r.name:<32} {r.detail}" for r in self.rows)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td style='color:{'#1a7f37' if r.ok else '#b3261e'};font-weight:bold'>"
            f"{'OK' if r.ok else 'FAIL'}</td><td>{html.escape(r.name)}</td>"
            f"<td><code>{html.escape(r.detail)}</code></td></tr>"
            for r in self.rows
        )
        return f"<table><tr><th></th><th>what</th><th>version</th></tr>{body}</table>"


def cryptography_openssl() -> str:
    """The OpenSSL ``cryptography`` uses: bundled in its PyPI wheel, conda's on conda-forge."""
    from cryptography.hazmat.backends.openssl import backend

    return backend.openssl_version_text()


def check() -> Report:
    """Python, the OpenSSL it was built with, cryptography's OpenSSL, and every runtime
    package, each OK or FAIL."""
    rows = [
        Row("Python", sys.version_info >= (3, 10), platform.python_version()),
        Row(
            "OpenSSL Python was built with",
            ssl.OPENSSL_VERSION_INFO >= (1, 1, 1),
            ssl.OPENSSL_VERSION,
        ),
        Row("TLS 1.3 available", ssl.HAS_TLSv1_3, str(ssl.HAS_TLSv1_3)),
    ]
    try:
        rows.append(Row("cryptography's OpenSSL", True, cryptography_openssl()))
    except Exception as exc:  # cryptography missing or broken: say so, don't crash the check
        rows.append(Row("cryptography's OpenSSL", False, str(exc)))
    for name in RUNTIME_PACKAGES:
        try:
            rows.append(Row(name, True, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append(Row(name, False, "not installed: run `make lab` or `pip install -e .`"))
    return Report(rows)
