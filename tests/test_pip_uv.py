"""pip and uv install a real wheel from the lab's package index through the inspecting proxy.

Notebook 09's runbook, item 1, for the two package installers. The ``valid`` site serves a
PEP 503 simple index with one wheel (helpers/lab/wheel.py); the lab's TLS-inspecting proxy
(helpers/lab/proxy.py) re-signs it with its "Corporate Inspection CA". Each test runs the
real tool in a subprocess, in a temporary directory, with an environment built from
nothing (this machine's own ``PIP_CERT``, ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``,
``PIP_FIND_LINKS``... must not leak in), no cache, no config file, and never touches the
venv (``pip download -d`` / ``install --target``).

Names: the tools only ever reach the lab *through the proxy* (pip ``--proxy`` or
``HTTPS_PROXY``), so they send ``CONNECT valid.lab.localhost:PORT`` and never look the name
up themselves; the proxy answers lab names from the lab's own table. pip runs with the
course's offline guard switched on inside its process (``helpers/netguard.py``), so a
lookup of a lab name, or any non-loopback connection, would fail the test.

What the tools read, measured (December 2026, Linux, pip runs via ``--proxy`` unless said):

===========================  ======  ======  ======  ======  ======
pip                          23.2.1  24.0    24.1.2  24.2    25.1.1
===========================  ======  ======  ======  ======  ======
``--cert`` / ``PIP_CERT``    yes     yes     yes     yes     yes
``REQUESTS_CA_BUNDLE``,      yes     yes     no      no      no
``CURL_CA_BUNDLE``           (yes with the proxy from ``HTTPS_PROXY``: pip >= 24.1 sets
                             ``session.trust_env = False`` when ``--proxy`` is given)
``SSL_CERT_FILE``            no      no      no      yes     yes
===========================  ======  ======  ======  ======  ======

pip 24.2 made truststore its default on Python 3.10+ (``--use-deprecated=legacy-certs``
goes back to certifi, and then ``SSL_CERT_FILE`` is ignored again); on Linux truststore
verifies with OpenSSL's default paths, which is where ``SSL_CERT_FILE`` comes in.
``--isolated`` ignores ``PIP_CERT`` (it ignores every ``PIP_*`` variable).

uv 0.13.8 (rustls): reads ``SSL_CERT_FILE`` (and ``SSL_CERT_DIR``) with or without
``--native-tls``; ``--native-tls``/``UV_NATIVE_TLS`` are deprecated for
``--system-certs``/``UV_SYSTEM_CERTS`` and on Linux read the same files; ``PIP_CERT`` and
``REQUESTS_CA_BUNDLE`` mean nothing to it; ``--allow-insecure-host`` switches verification
off for that host. rustls (webpki) refuses a root whose nameConstraints hold a dNSName that
is an IP literal (``MalformedNameConstraint``), which OpenSSL accepts.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest
import requests

from helpers.clients import clean_env
from helpers.lab import SCENARIOS, Lab, wheel
from helpers.lab.pages import app_for
from helpers.lab.server import Request

#: pip, run with the course's offline guard on in its own process: through the proxy it
#: never resolves a lab name, and this proves it (a lookup would raise OfflineViolation).
_PIP_BOOT = (
    "import runpy, sys; from helpers import netguard; netguard.install(); "
    "sys.argv[0] = 'pip'; runpy.run_module('pip', run_name='__main__', alter_sys=True)"
)
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


def _pip_version() -> tuple[int, ...]:
    parts = importlib.metadata.version("pip").split(".")
    return tuple(int(p) for p in parts[:2] if p.isdigit())


def _pip_reads(variable: str, proxy_from: str) -> bool:
    """Whether this pip trusts the file named by ``variable`` (the table above)."""
    version = _pip_version()
    if variable == "SSL_CERT_FILE":
        return version >= (24, 2)  # truststore by default: OpenSSL's default verify paths
    # REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE: requests reads them only while trust_env is on.
    return proxy_from == "env" or version < (24, 1)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(scenarios={"valid": SCENARIOS["valid"]}) as running:
        yield running


@pytest.fixture(scope="module")
def bundle(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runbook's fix: the inspection root exported, next to the lab root, in one file."""
    path = tmp_path_factory.mktemp("bundle") / "bundle.pem"
    path.write_text(lab.proxy.inspection_ca.read_text() + lab.ca_bundle.read_text())
    return path


def _env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing of this machine's TLS, pip or uv settings in it (no
    pip.conf, global, user or site; no uv.toml): helpers.clients.clean_env, plus ``extra``."""
    return {**clean_env(home), **extra}


def _pip(
    lab: Lab, work: Path, *args: str, proxy_from: str = "flag", tunnel: bool = False, **env: str
) -> str:
    """``pip download tls-course-hello`` through the inspecting proxy (or the tunnel); pip's output.

    ``proxy_from``: ``"flag"`` (``--proxy URL``) or ``"env"`` (``HTTPS_PROXY=URL``).
    """
    proxy = lab.proxy.tunnel if tunnel else lab.proxy.inspecting
    command = [sys.executable, "-c", _PIP_BOOT, *args]
    command += ["--no-cache-dir", "--retries", "0", "--timeout", "30"]
    command += ["--index-url", wheel.index_url(lab), "--no-deps", wheel.PROJECT]
    if proxy_from == "flag":
        command += ["--proxy", proxy]
    else:
        env = {"HTTPS_PROXY": proxy, **env}
    done = subprocess.run(
        command, cwd=work, env=_env(work, **env), capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert "OfflineViolation" not in output, output
    return output


def _downloaded(work: Path) -> bytes | None:
    path = work / "d" / wheel.FILENAME
    return path.read_bytes() if path.exists() else None


# --- the index and the wheel ----------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.meta: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "a":
            self._href = found["href"]
        elif tag == "meta" and "name" in found:
            self.meta[found["name"]] = found.get("content", "")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data))
            self._href = None


def _anchors(page: requests.Response) -> _Anchors:
    parser = _Anchors()
    parser.feed(page.text)
    return parser


def test_the_index_is_a_pep503_simple_repository(lab):
    index = wheel.index_url(lab)
    with requests.Session() as session:
        session.verify = str(lab.ca_bundle)
        session.trust_env = False  # else this machine's REQUESTS_CA_BUNDLE beats session.verify
        root = _anchors(session.get(index, timeout=10))
        assert root.meta == {"pypi:repository-version": "1.0"}  # PEP 629
        assert root.links == [("tls-course-hello/", "tls-course-hello")]
        # PEP 503: any spelling that normalises to the name reaches the project page.
        for spelling in ("tls-course-hello/", "TLS_Course.Hello/", "tls-course-hello"):
            page = session.get(urljoin(index, spelling), timeout=10)
            assert page.status_code == 200, spelling
            (href, text), *more = _anchors(page).links
            assert not more and text == wheel.FILENAME
            url, fragment = urldefrag(urljoin(page.url, href))
            data = session.get(url, timeout=10).content
            assert fragment == "sha256=" + hashlib.sha256(data).hexdigest()
            assert data == wheel.wheel_bytes()
        assert session.get(urljoin(index, "requests/"), timeout=10).status_code == 404


def test_only_the_valid_site_is_an_index():
    request = Request("GET", "/simple/", "HTTP/1.1", {})
    assert app_for(SCENARIOS["valid"])(request).status == 200
    assert app_for(SCENARIOS["expired"])(request).status == 404


def test_the_wheel_is_a_pep427_wheel_with_a_true_record():
    data = wheel.wheel_bytes()
    wheel.wheel_bytes.cache_clear()
    assert wheel.wheel_bytes() == data, "the same bytes on every build"
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    dist_info = f"{wheel.MODULE}-{wheel.VERSION}.dist-info"
    assert "Tag: py3-none-any" in archive.read(f"{dist_info}/WHEEL").decode()
    metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert f"Name: {wheel.PROJECT}\n" in metadata and f"Version: {wheel.VERSION}\n" in metadata
    rows = list(csv.reader(io.StringIO(archive.read(f"{dist_info}/RECORD").decode())))
    assert sorted(r[0] for r in rows) == sorted(archive.namelist())
    for path, digest, size in rows:
        if path == f"{dist_info}/RECORD":
            assert digest == size == ""
            continue
        content = archive.read(path)
        expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        assert digest == "sha256=" + expected.decode() and int(size) == len(content), path


# --- pip ------------------------------------------------------------------------------


def test_pip_fails_through_the_inspecting_proxy_trusting_the_lab_root_only(lab, tmp_path):
    output = _pip(lab, tmp_path, "download", "-d", "d", "--cert", str(lab.ca_bundle))
    assert VERIFY_FAILED in output, output
    # The proxy sends its root along with the leaf: OpenSSL's verify code 19.
    assert re.search(r"self[- ]signed certificate in certificate chain", output), output
    assert "No matching distribution found for tls-course-hello" in output, output
    assert _downloaded(tmp_path) is None


def test_pip_through_the_plain_tunnel_needs_only_the_lab_root(lab, tmp_path):
    # The contrast: a CONNECT tunnel does not touch TLS, so the site's own root is enough.
    _pip(lab, tmp_path, "download", "-d", "d", "--cert", str(lab.ca_bundle), tunnel=True)
    assert _downloaded(tmp_path) == wheel.wheel_bytes()


def test_pip_installs_the_wheel_with_cert_and_it_runs(lab, bundle, tmp_path):
    output = _pip(lab, tmp_path, "install", "--target", "t", "--cert", str(bundle))
    assert "Successfully installed tls-course-hello-1.0" in output, output
    ran = subprocess.run(
        [sys.executable, "-m", wheel.MODULE],
        env=_env(tmp_path, PYTHONPATH=str(tmp_path / "t")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.stdout.strip() == wheel.GREETING, ran.stdout + ran.stderr
    record = (tmp_path / "t" / f"{wheel.MODULE}-{wheel.VERSION}.dist-info" / "RECORD").read_text()
    assert f"{wheel.MODULE}.py,sha256=" in record


def test_pip_downloads_the_exact_bytes_with_pip_cert(lab, bundle, tmp_path):
    output = _pip(lab, tmp_path, "download", "-d", "d", PIP_CERT=str(bundle))
    data = _downloaded(tmp_path)
    assert data is not None, output
    assert hashlib.sha256(data).hexdigest() == wheel.wheel_sha256()


def test_pip_isolated_ignores_pip_cert(lab, bundle, tmp_path):
    output = _pip(lab, tmp_path, "download", "-d", "d", "--isolated", PIP_CERT=str(bundle))
    assert VERIFY_FAILED in output, output
    assert _downloaded(tmp_path) is None


@pytest.mark.parametrize("proxy_from", ["flag", "env"])
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_which_variables_pip_reads(lab, bundle, tmp_path, variable, proxy_from):
    output = _pip(
        lab, tmp_path, "download", "-d", "d", proxy_from=proxy_from, **{variable: str(bundle)}
    )
    reads = _pip_reads(variable, proxy_from)
    pip = importlib.metadata.version("pip")
    if reads:
        assert _downloaded(tmp_path) is not None, f"pip {pip} ignored {variable}:\n{output}"
    else:
        assert VERIFY_FAILED in output, f"pip {pip} read {variable}:\n{output}"
        assert _downloaded(tmp_path) is None


# --- uv -------------------------------------------------------------------------------


def _uv_binary() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed here (it is in the dev extra: pip install -e '.[dev]')")
    return found


def _uv(lab: Lab, work: Path, *args: str, **env: str) -> tuple[int, str]:
    """``uv pip install --target`` through the inspecting proxy (``HTTPS_PROXY``)."""
    command = [_uv_binary(), "pip", "install", "--python", sys.executable, "--target", "t"]
    command += ["--no-deps", "--index-url", wheel.index_url(lab), *args, wheel.PROJECT]
    uv_env = {"HTTPS_PROXY": lab.proxy.inspecting, **env}  # uv has no --proxy flag
    done = subprocess.run(
        command, cwd=work, env=_env(work, **uv_env), capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def _installed(work: Path) -> bool:
    return (work / "t" / f"{wheel.MODULE}.py").is_file()


def test_uv_fails_through_the_inspecting_proxy_without_the_bundle(lab, bundle, tmp_path):
    # PIP_CERT and REQUESTS_CA_BUNDLE are other tools' settings: uv does not read them.
    code, output = _uv(lab, tmp_path, PIP_CERT=str(bundle), REQUESTS_CA_BUNDLE=str(bundle))
    assert code != 0
    assert "invalid peer certificate: UnknownIssuer" in output, output
    assert not _installed(tmp_path)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ((), {}),
        (("--native-tls",), {}),  # deprecated in uv 0.13 for --system-certs
        ((), {"UV_NATIVE_TLS": "1"}),
    ],
    ids=["plain", "native-tls", "UV_NATIVE_TLS"],
)
def test_uv_installs_with_ssl_cert_file(lab, bundle, tmp_path, args, env):
    code, output = _uv(lab, tmp_path, *args, SSL_CERT_FILE=str(bundle), **env)
    assert "MalformedNameConstraint" not in output, (
        "rustls (uv) refuses the inspection root's nameConstraints: a dNSName that is an IP "
        f"literal is malformed to webpki (helpers/lab/proxy.py INSPECTION_PERMITTED):\n{output}"
    )
    assert code == 0, output
    assert "+ tls-course-hello==1.0" in output, output
    assert _installed(tmp_path)


def test_uv_native_tls_alone_is_the_os_store_without_the_inspection_root(lab, tmp_path):
    # On Linux "the OS store" is OpenSSL's files; the inspection root is not in them.
    code, output = _uv(lab, tmp_path, "--native-tls")
    assert code != 0
    assert "invalid peer certificate: UnknownIssuer" in output, output


def test_uv_allow_insecure_host_switches_verification_off(lab, tmp_path):
    # The wrong fix, shown so it can be recognised: no CA at all, and it installs.
    code, output = _uv(lab, tmp_path, "--allow-insecure-host", "valid.lab.localhost")
    assert code == 0, output
    assert _installed(tmp_path)


def test_uv_trusts_the_lab_root_itself_through_the_plain_tunnel(lab, tmp_path):
    # rustls refuses a root whose nameConstraints hold a dNSName that is an IP address
    # ("MalformedNameConstraint"); the lab root permits lab.localhost and loopback
    # addresses only as the right types (helpers/lab/build.py, LAB_PERMITTED).
    code, output = _uv(
        lab, tmp_path, HTTPS_PROXY=lab.proxy.tunnel, SSL_CERT_FILE=str(lab.ca_bundle)
    )
    assert code == 0, output
    assert _installed(tmp_path)
