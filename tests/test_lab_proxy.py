"""The lab's CONNECT proxies (helpers/lab/proxy.py, notebook 09): real clients over loopback.

``tunnel`` must behave exactly as a direct connection; ``inspecting`` must fail every
scenario for a client that trusts the lab CA alone (verify code 19, its root is in the
chain), and work with a bundle of the lab CA and the inspection root, passing on the
proxy's own verdict about the real server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from helpers import names
from helpers.errors import LabError
from helpers.lab import SCENARIOS, Lab, RemoteLab
from helpers.lab import proxy as proxy_module
from helpers.pki import load_private_key

from .polling import wait_for

NAMES = list(SCENARIOS)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lab():
    with Lab() as running:
        yield running


@pytest.fixture(scope="module")
def bundle(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the runbook builds: the lab CA plus the exported inspection root."""
    path = tmp_path_factory.mktemp("proxy") / "lab-and-inspection.pem"
    path.write_bytes(lab.ca_bundle.read_bytes() + lab.proxy.inspection_ca.read_bytes())
    return path


def _connect(proxy_url: str, host: str, port: int) -> socket.socket:
    """A socket through which ``host:port`` is reached: CONNECT sent, 200 read."""
    where = urlsplit(proxy_url)
    sock = socket.create_connection((where.hostname, where.port), timeout=15)
    authority = f"[{host}]" if ":" in host else host
    sock.sendall(
        f"CONNECT {authority}:{port} HTTP/1.1\r\nHost: {authority}:{port}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, f"the proxy hung up after CONNECT {authority}:{port}: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200 "), head
    return sock


def _ask(proxy_url: str, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes to the proxy; its status and body (it closes after an error)."""
    where = urlsplit(proxy_url)
    with socket.create_connection((where.hostname, where.port), timeout=15) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    assert match, data[:200]
    return int(match[1]), data.partition(b"\r\n\r\n")[2]


def _visit(sock: socket.socket, host: str, port: int, ctx: ssl.SSLContext) -> tuple[object, ...]:
    """Handshake and one GET over ``sock``: what a client sees, in comparable form."""
    try:
        tls = ctx.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        return ("handshake", type(exc).__name__, getattr(exc, "verify_code", None), _reason(exc))
    with tls:
        authority = f"[{host}]" if ":" in host else host
        tls.sendall(
            f"GET / HTTP/1.1\r\nHost: {authority}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        try:
            while chunk := tls.recv(65536):
                data += chunk
        except (ssl.SSLError, OSError) as exc:
            return ("read", type(exc).__name__, _reason(exc), data.split(b"\r\n", 1)[0])
    return ("ok", data.split(b"\r\n", 1)[0], data.partition(b"\r\n\r\n")[2])


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc)


def _client(cafile: Path | str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


# --------------------------------------------------------------------------- tunnel


@pytest.mark.parametrize("name", NAMES)
def test_tunnel_behaves_exactly_as_direct(lab: Lab, name: str) -> None:
    host, port = lab.host(name), lab.port(name)
    direct = _visit(
        socket.create_connection(lab.address(name), timeout=15), host, port, _client(lab.ca_bundle)
    )
    tunnelled = _visit(_connect(lab.proxy.tunnel, host, port), host, port, _client(lab.ca_bundle))
    assert tunnelled == direct


# --------------------------------------------------------------------------- inspecting


@pytest.mark.parametrize("name", NAMES)
def test_inspecting_fails_every_scenario_with_the_lab_ca_alone(lab: Lab, name: str) -> None:
    host, port = lab.host(name), lab.port(name)
    seen = _visit(_connect(lab.proxy.inspecting, host, port), host, port, _client(lab.ca_bundle))
    # The proxy sends its root along, so OpenSSL finds it in the chain and stops there.
    assert seen == (
        "handshake",
        "SSLCertVerificationError",
        19,
        "self-signed certificate in certificate chain",
    )


@pytest.mark.parametrize("name", NAMES)
def test_inspecting_with_the_bundle_passes_on_the_proxys_verdict(
    lab: Lab, bundle: Path, name: str
) -> None:
    """With both roots trusted the client's handshake always succeeds: what it learns of
    the real server is the proxy's verdict, which is a default client's (``expect``)."""
    host, port = lab.host(name), lab.port(name)
    direct = _visit(
        socket.create_connection(lab.address(name), timeout=15), host, port, _client(lab.ca_bundle)
    )
    seen = _visit(_connect(lab.proxy.inspecting, host, port), host, port, _client(bundle))
    # The real server fails a default client, in its handshake or (TLS 1.3: a refused
    # client certificate) on the first read, before any byte: a 502 page says why.
    if direct[0] == "handshake" or (direct[0] == "read" and direct[3] == b""):
        assert seen[0] == "ok" and seen[1] == b"HTTP/1.1 502 Bad Gateway", seen
        body = seen[2].decode()  # type: ignore[union-attr]
        expect = SCENARIOS[name].expect
        assert f"could not reach {host} securely" in body
        if expect.error:
            assert expect.error.lower() in body.lower(), body
    else:
        assert seen == direct


def test_the_leaf_is_issued_once_per_host_by_the_inspection_ca(lab: Lab, bundle: Path) -> None:
    host, port = lab.host("valid"), lab.port("valid")
    ders = []
    for _ in range(2):
        with _client(bundle).wrap_socket(
            _connect(lab.proxy.inspecting, host, port), server_hostname=host
        ) as tls:
            ders.append(tls.getpeercert(binary_form=True))
    assert ders[0] == ders[1]
    leaf = x509.load_der_x509_certificate(ders[0])
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert issuer == "Corporate Inspection CA"
    assert leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == [host]


def test_inspection_ca_file_is_public_and_its_key_is_nowhere(lab: Lab) -> None:
    path = lab.proxy.inspection_ca
    assert path.parent == lab.files.directory
    text = path.read_text()
    assert text.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    ca = x509.load_pem_x509_certificate(text.encode())
    assert (
        ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Corporate Inspection CA"
    )
    # Name-constrained: even trusted by mistake, it vouches for localhost names only.
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    # The key lives in memory only: no key file next to the lab CA belongs to it.
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ours = lab.proxy.authority.key.public_key().public_bytes(*spki)
    for other in lab.files.directory.iterdir():
        if other.is_file() and b"PRIVATE KEY" in other.read_bytes():
            assert load_private_key(other.read_bytes()).public_key().public_bytes(*spki) != ours


# --------------------------------------------------------------------------- real clients


def test_requests_through_the_inspecting_proxy(lab: Lab, bundle: Path) -> None:
    url, proxies = lab.url("valid"), {"https": lab.proxy.inspecting}
    with pytest.raises(
        requests.exceptions.SSLError, match="self-signed certificate in certificate chain"
    ):
        requests.get(url, verify=str(lab.ca_bundle), proxies=proxies, timeout=15)
    assert requests.get(url, verify=str(bundle), proxies=proxies, timeout=15).status_code == 200
    # The client checks only the proxy's leaf: the inspection root alone is enough.
    assert requests.get(url, verify=str(lab.proxy.inspection_ca), proxies=proxies, timeout=15).ok
    # Through the tunnel the lab CA alone is enough: nobody re-signs anything.
    assert requests.get(
        url, verify=str(lab.ca_bundle), proxies={"https": lab.proxy.tunnel}, timeout=15
    ).ok


def test_urllib_through_the_inspecting_proxy(lab: Lab, bundle: Path) -> None:
    def opener(cafile: Path) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({"https": lab.proxy.inspecting}),
            urllib.request.HTTPSHandler(context=_client(cafile)),
        )

    with pytest.raises(urllib.error.URLError, match="self-signed certificate in certificate chain"):
        opener(lab.ca_bundle).open(lab.url("valid"), timeout=15)
    with opener(bundle).open(lab.url("valid"), timeout=15) as answer:
        assert answer.status == 200


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60)


def test_curl_through_the_inspecting_proxy(lab: Lab, bundle: Path) -> None:
    url, proxy = lab.url("valid"), lab.proxy.inspecting
    refused = _curl("--proxy", proxy, "--cacert", str(lab.ca_bundle), url)
    assert refused.returncode == 60, refused.stderr
    assert "self-signed certificate in certificate chain" in refused.stderr
    # --proxy-cacert is for an https:// proxy's own certificate: with an http:// proxy it
    # changes nothing, the site's (re-signed) certificate is still checked with --cacert.
    useless = _curl(
        "--proxy", proxy, "--cacert", str(lab.ca_bundle), "--proxy-cacert", str(bundle), url
    )
    assert useless.returncode == 60, useless.stderr
    fixed = _curl(
        "--proxy", proxy, "--cacert", str(bundle), "-o", os.devnull, "-w", "%{http_code}", url
    )
    assert (fixed.returncode, fixed.stdout) == (0, "200"), fixed.stderr
    expired = _curl(
        "--proxy", proxy, "--cacert", str(bundle), "-w", "%{http_code}", lab.url("expired")
    )
    assert expired.returncode == 0 and expired.stdout.endswith("502")
    assert "certificate has expired" in expired.stdout


def test_openssl_s_client_shows_the_inspection_root(lab: Lab) -> None:
    host, port = lab.host("valid"), lab.port("valid")
    out = subprocess.run(
        ["openssl", "s_client", "-proxy", lab.proxy.inspecting.removeprefix("http://"),
         "-connect", f"{host}:{port}", "-servername", host, "-showcerts", "-CAfile", str(lab.ca_bundle)],
        input="", capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    issuers = [line.split("i:", 1)[1] for line in out.splitlines() if line.strip().startswith("i:")]
    assert issuers and all(
        "CN = Corporate Inspection CA" in i.replace("CN=", "CN = ") for i in issuers
    )
    assert "Verify return code: 19 (self-signed certificate in certificate chain)" in out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2  # the leaf, then the root to export


def test_uv_rustls_accepts_the_inspection_root(lab: Lab, tmp_path: Path) -> None:
    """uv verifies with rustls/webpki, which refuses a root whose nameConstraints hold a
    dNSName that looks like an address ("127.0.0.1": MalformedNameConstraint); the
    inspection root has none. uv reaching the index's 404 means the handshake passed."""
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        pytest.skip("uv is not installed in this environment (pyproject's test extra has it)")
    env = {
        k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("UV_")
    }
    env.update(
        HTTPS_PROXY=lab.proxy.inspecting,
        SSL_CERT_FILE=str(lab.proxy.inspection_ca),  # the inspection root alone is enough
        UV_NO_CACHE="1",
        UV_OFFLINE="0",
    )
    ran = subprocess.run(
        [str(uv), "pip", "install", "--dry-run", "--python", sys.executable,
         "--index-url", lab.url("valid") + "simple/", "nosuchpkg"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "not found in the package registry" in ran.stderr, ran.stderr
    assert "invalid peer certificate" not in ran.stderr


# --------------------------------------------------------------------------- the proxy family


def test_an_https_proxy_url_for_an_http_proxy_is_wrong_version_number(lab: Lab) -> None:
    """The client starts TLS with the proxy; the proxy answers in plain HTTP, which
    OpenSSL reads as a record header with a nonsense version (3.0 and 3.5 alike)."""
    wrong = lab.proxy.tunnel.replace("http://", "https://")
    with pytest.raises(requests.exceptions.ProxyError) as caught:
        requests.get(
            lab.url("valid"), verify=str(lab.ca_bundle), proxies={"https": wrong}, timeout=15
        )
    text = str(caught.value)
    assert "WRONG_VERSION_NUMBER" in text and "only use HTTP and not HTTPS" in text  # urllib3 2.x
    curl = _curl("--proxy", wrong, "--cacert", str(lab.ca_bundle), lab.url("valid"))
    assert curl.returncode == 35 and "wrong version number" in curl.stderr, curl.stderr
    # urllib ignores the proxy URL's scheme: it sends CONNECT in plain text and works.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": wrong}),
        urllib.request.HTTPSHandler(context=_client(lab.ca_bundle)),
    )
    with opener.open(lab.url("valid"), timeout=15) as answer:
        assert answer.status == 200


def test_requests_honours_no_proxy_for_a_lab_name(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", lab.proxy.inspecting)
    for name in ("NO_PROXY", "no_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = lab.url("valid")
    with pytest.raises(
        requests.exceptions.SSLError, match="self-signed certificate in certificate chain"
    ):
        requests.get(url, verify=str(lab.ca_bundle), timeout=15)
    monkeypatch.setenv("NO_PROXY", "lab.localhost")  # a domain: every name under it too
    assert requests.get(url, verify=str(lab.ca_bundle), timeout=15).status_code == 200


@pytest.mark.parametrize("mode", ["tunnel", "inspecting"])
def test_refusals(lab: Lab, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = getattr(lab.proxy, mode)
    asked: list[str] = []
    real = names._real_getaddrinfo

    def spy(host: object, *args: object, **kwargs: object) -> object:
        asked.append(str(host))
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(names, "_real_getaddrinfo", spy)
    for target in ("example.com:443", "10.1.2.3:443", "[2001:db8::1]:443", "EXAMPLE.com.:443"):
        status, body = _ask(url, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert status == 403 and b"only reaches" in body, body
    assert not any("example" in h.lower() for h in asked), asked  # never looked up
    status, body = _ask(url, b"CONNECT nosuch.lab.localhost:443 HTTP/1.1\r\n\r\n")
    assert status == 502 and b"not one of the running lab's names" in body
    status, body = _ask(url, f"GET {lab.url('valid')} HTTP/1.1\r\n\r\n".encode())
    assert status == 405 and b"only opens CONNECT tunnels" in body
    assert _ask(url, b"CONNECT valid.lab.localhost HTTP/1.1\r\n\r\n")[0] == 400  # no port
    assert _ask(url, b"CONNECT valid.lab.localhost:99999 HTTP/1.1\r\n\r\n")[0] == 400
    for bad in (b"a..b.localhost:443", b"under_score.localhost:443", b"[::zz]:443", b"x:1@y:443"):
        assert _ask(url, b"CONNECT " + bad + b" HTTP/1.1\r\n\r\n")[0] == 400, bad
    assert _ask(url, b"CONNECT [::1]:9 HTTP/1.1\r\n\r\n")[0] in (200, 502)  # loopback: allowed


def test_hostile_clients_get_no_traceback(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(proxy_module, "HEAD_TIMEOUT", 0.5)
    monkeypatch.setattr(proxy_module, "HANDSHAKE_TIMEOUT", 0.5)
    url = lab.proxy.inspecting
    where = urlsplit(url)
    garbage = [b"\x00\xff\xfe garbage\r\n\r\n", b"\x16\x03\x01\x02\x00\x01", b"A" * (9 * 1024)]
    statuses = [_ask(url, g)[0] for g in garbage]
    assert statuses == [400, 400, 431]
    # Idle: says nothing at all, then the head deadline passes (408).
    status, _ = _ask(url, b"")
    assert status == 408
    # Opens a tunnel, then never starts its handshake, or sends garbage instead.
    with _connect(url, lab.host("valid"), lab.port("valid")) as silent:
        silent.settimeout(10)
        assert silent.recv(1) == b""  # dropped after the handshake deadline
    with _connect(url, lab.host("valid"), lab.port("valid")) as rude:
        rude.sendall(b"not a ClientHello\r\n" * 10)
        rude.settimeout(10)
        with contextlib.suppress(OSError):  # a reset is as good as a close here
            while rude.recv(65536):
                pass
    # Hangs up in the middle of the head.
    with socket.create_connection((where.hostname, where.port), timeout=5) as gone:
        gone.sendall(b"CONNECT valid.lab.local")
    assert wait_for(lambda: all(p.connections == 0 for p in lab.proxy.proxies.values()))
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err, err


def test_connections_over_the_cap_are_turned_away(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy_module, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(proxy_module, "HEAD_TIMEOUT", 5.0)
    where = urlsplit(lab.proxy.tunnel)
    held = [socket.create_connection((where.hostname, where.port), timeout=5) for _ in range(2)]
    try:
        assert wait_for(lambda: lab.proxy.proxies["tunnel"].connections == 2)
        status, body = _ask(lab.proxy.tunnel, b"")
        assert status == 503 and b"busy" in body
    finally:
        for sock in held:
            sock.close()


# --------------------------------------------------------------------------- lifecycle


def test_stopping_the_lab_frees_the_ports_and_removes_the_root() -> None:
    before = {t.ident for t in threading.enumerate()}
    lab = Lab().start()
    proxies = lab.proxy
    # One tunnel in use while the lab stops: it is closed and its thread joined too.
    held = _connect(proxies.tunnel, lab.host("valid"), lab.port("valid"))
    ports = [urlsplit(proxies.tunnel).port, urlsplit(proxies.inspecting).port]
    path = proxies.inspection_ca
    assert path.exists()
    lab.stop()
    assert not path.exists()
    held.settimeout(5)
    assert held.recv(1) == b""
    held.close()
    assert {t.ident for t in threading.enumerate()} <= before
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # Free again (SO_REUSEADDR, as every server sets it, only ignores the TIME_WAIT
        # left by the closed tunnel; it cannot bind a port that is still listening).
        assert wait_for(lambda port=port: _can_bind(port)), port
    with pytest.raises(LabError, match="not running"):
        lab.proxy  # noqa: B018


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_joined_lab_has_no_proxy() -> None:
    remote = RemoteLab("http://127.0.0.1:9/#" + "AB" * 32)
    with pytest.raises(LabError, match="The proxy runs only in a local lab"):
        remote.proxy  # noqa: B018


def test_lab_json_has_the_proxy_entry(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        summary = json.loads(proc.stdout.readline())
        entry = summary["proxy"]
        assert set(entry) == {"tunnel", "inspecting", "inspection_ca"}
        for key in ("tunnel", "inspecting"):
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", entry[key]), entry
        assert (
            "Corporate Inspection CA"
            in x509.load_pem_x509_certificate(
                Path(entry["inspection_ca"]).read_bytes()
            ).subject.rfc4514_string()
        )
        valid = summary["scenarios"]["valid"]
        bundle = tmp_path / "bundle.pem"
        bundle.write_bytes(
            Path(summary["ca_bundle"]).read_bytes() + Path(entry["inspection_ca"]).read_bytes()
        )
        fetched = _curl("--proxy", entry["inspecting"], "--cacert", str(bundle), "-o", os.devnull,
                        "-w", "%{http_code}", valid["url"])  # fmt: skip
        assert fetched.stdout == "200", fetched.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert not Path(entry["inspection_ca"]).exists()
