"""A tiny Python package the lab builds and serves from a simple index (introduced in notebook 09).

Why the lab has a package index
-------------------------------
``pip`` and ``uv`` are HTTPS clients too, and behind a TLS-inspecting proxy they are
often the first thing to break at work. To show them failing and then working, the
``valid`` scenario's site is also a small package index:

* ``/simple/`` is a **simple repository** (PEP 503, HTML; PEP 691 keeps that format as
  ``application/vnd.pypi.simple.v1+html``) listing one project, ``tls-course-hello``;
* ``/simple/tls-course-hello/`` links its one file, with the file's SHA-256 in the link:
  ``<a href="/files/tls_course_hello-1.0-py3-none-any.whl#sha256=...">``. PEP 503: "The URL
  SHOULD include a hash in the form of a URL fragment with the following syntax:
  ``#<hashname>=<hashvalue>``". pip and uv check the downloaded bytes against it;
* the wheel itself, built here, by hand, in memory.

A wheel is a zip file (PEP 427)
-------------------------------
Nothing magic: a wheel named ``{name}-{version}-{python tag}-{abi tag}-{platform tag}.whl``
(``py3-none-any``: any Python 3, no compiled code, any machine) is a zip archive holding
the package's files as they will sit in ``site-packages`` plus one ``.dist-info``
directory with three files:

``METADATA``  the core metadata (name, version, summary), as email-style headers;
``WHEEL``     the wheel format version and its tags (PEP 427 §"The .dist-info directory");
``RECORD``    one CSV line per file: ``path,sha256=<urlsafe base64, no padding>,size``
              (PEP 376 and PEP 427 §"The .dist-info directory"); ``RECORD`` lists itself
              with empty hash and size. An installer checks every file against it.

The bytes are **deterministic**: every zip entry gets the same timestamp (1980-01-01,
the earliest a zip can say), the same permissions and no compression (deflate output
can differ between zlib builds). So the wheel's SHA-256 is the same on every machine and
every start, and can be printed in a notebook or pinned with ``pip --require-hashes``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import zipfile
from functools import cache
from typing import Protocol

__all__ = [
    "FILENAME",
    "MODULE",
    "PROJECT",
    "SCENARIO",
    "VERSION",
    "GREETING",
    "file_page",
    "index_page",
    "index_url",
    "wheel_bytes",
    "wheel_sha256",
]

#: The scenario whose site is also the package index.
SCENARIO = "valid"
#: The project name as people write it, and as PEP 503 normalises it (lower case, runs of
#: ``-_.`` become one ``-``): the index page of the project lives at ``/simple/<that>/``.
PROJECT = "tls-course-hello"
VERSION = "1.0"
#: The import name (``-`` is not allowed in a Python module name).
MODULE = "tls_course_hello"
#: PEP 427's file name: distribution (``-`` escaped as ``_``), version, python, abi, platform.
FILENAME = f"{MODULE}-{VERSION}-py3-none-any.whl"
GREETING = "Hello from the TLS course lab: this wheel reached you over verified TLS."

#: 1980-01-01 00:00:00: the zip format's epoch, so no entry carries the build's clock.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

_MODULE_SOURCE = f'''"""The package the TLS course lab serves from its index (helpers/lab/wheel.py)."""

GREETING = {GREETING!r}


def main() -> None:
    print(GREETING)


if __name__ == "__main__":
    main()
'''

_METADATA = f"""Metadata-Version: 2.1
Name: {PROJECT}
Version: {VERSION}
Summary: A one-module package served by the TLS course lab's package index (notebook 09).
Requires-Python: >=3.8
"""

_WHEEL = f"""Wheel-Version: 1.0
Generator: helpers.lab.wheel ({VERSION})
Root-Is-Purelib: true
Tag: py3-none-any
"""


def _record_hash(data: bytes) -> str:
    # PEP 376 / PEP 427: the digest in urlsafe base64 with the trailing '=' removed.
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # "Unix", so external_attr holds Unix permissions
    info.external_attr = (0o100644 & 0xFFFF) << 16  # a regular file, rw-r--r--
    return info


@cache
def wheel_bytes() -> bytes:
    """The wheel ``tls_course_hello-1.0-py3-none-any.whl``, built in memory (same bytes every time)."""
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    files = {
        f"{MODULE}.py": _MODULE_SOURCE.encode(),
        f"{dist_info}/METADATA": _METADATA.encode(),
        f"{dist_info}/WHEEL": _WHEEL.encode(),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{dist_info}/RECORD,,\n"  # RECORD cannot hold its own hash
    files[f"{dist_info}/RECORD"] = record.encode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():  # PEP 427 recommends .dist-info last, RECORD last of all
            archive.writestr(_entry(path), data)
    return buffer.getvalue()


def wheel_sha256() -> str:
    """The wheel's SHA-256 in hex, as the index link's ``#sha256=`` fragment carries it."""
    return hashlib.sha256(wheel_bytes()).hexdigest()


def _simple_page(title: str, links: list[tuple[str, str]]) -> bytes:
    # PEP 503: "a valid HTML5 page with a single anchor element per project/file";
    # PEP 629: the repository-version meta tag (1.0 is PEP 503's own format).
    e = html.escape
    anchors = "\n".join(f'    <a href="{e(href)}">{e(text)}</a><br>' for href, text in links)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>{e(title)}</title>\n  </head>\n  <body>\n{anchors}\n  </body>\n</html>\n"
    ).encode()


def index_page() -> bytes:
    """``/simple/``: the list of projects (just one), each linking to ``<normalised name>/``."""
    return _simple_page("Simple index", [(f"{PROJECT}/", PROJECT)])


def file_page() -> bytes:
    """``/simple/tls-course-hello/``: the project's files, each link ending in ``#sha256=``."""
    href = f"/files/{FILENAME}#sha256={wheel_sha256()}"
    return _simple_page(f"Links for {PROJECT}", [(href, FILENAME)])


class _Lab(Protocol):
    def url(self, name: str) -> str: ...


def index_url(lab: _Lab) -> str:
    """``https://valid.lab.localhost:PORT/simple/``: what pip's and uv's ``--index-url`` take.

    Reach it through the lab's proxy (``pip --proxy``, ``HTTPS_PROXY`` for uv): the
    proxy knows the lab names, while pip and uv would ask DNS about them (glibc sends
    names under ``localhost`` to DNS; :mod:`helpers.names` only helps inside Python).
    """
    return lab.url(SCENARIO) + "simple/"
