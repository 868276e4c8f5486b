"""The lab (helpers.lab): every scenario's verdict over real TLS, HTTP, lifecycle, cache."""

from __future__ import annotations

import contextlib
import datetime as dt
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
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from helpers import names
from helpers.errors import LabError
from helpers.lab import SCENARIOS, Expect, Lab, RemoteLab, get_lab
from helpers.lab.__main__ import _table
from helpers.lab.build import TIMELINE, Timeline, build_fingerprint, cache_dir, ensure
from helpers.lab.scenarios import CertRecipe, Scenario
from helpers.pki import CA as pki_ca

NAMES = list(SCENARIOS)


@pytest.fixture(scope="module")
def lab():
    with Lab() as running:
        yield running


def _get(lab: Lab, name: str, ctx: ssl.SSLContext, request: bytes | None = None) -> bytes:
    """Connect *by name* (helpers.names resolves it), handshake, send one request, read all."""
    host = lab.host(name)
    request = request or f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((host, lab.port(name)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(request)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            return data


def _verdict(fn) -> tuple[BaseException | None, object]:
    try:
        return None, fn()
    except Exception as exc:  # the verdict *is* the exception
        return exc, None


@pytest.mark.parametrize("name", NAMES)
def test_default_ssl_client_verdict(lab: Lab, name: str) -> None:
    scenario = lab.scenarios[name]
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    exc, body = _verdict(lambda: _get(lab, name, ctx))
    assert scenario.expect.matches(exc), (
        f"{name}: expected {scenario.expect.describe()}, got {exc!r}"
    )
    if scenario.expect.ok:
        assert isinstance(body, bytes)
        assert body.startswith(b"HTTP/1.1 200 OK\r\n")
        assert f"scenario <code>{name}</code>".encode() in body
    else:
        assert isinstance(exc, ssl.SSLError)
        assert type(exc).__name__ == scenario.expect.exception
        assert getattr(exc, "verify_code", None) == scenario.expect.verify_code


@pytest.mark.parametrize("name", NAMES)
def test_requests_verdict(lab: Lab, name: str) -> None:
    expect = lab.scenarios[name].verdict("requests")
    exc, response = _verdict(lambda: requests.get(lab.url(name), verify=lab.ca_bundle, timeout=5))
    assert expect.matches(exc), f"{name}: expected {expect.describe()}, got {exc!r}"
    if expect.ok:
        assert response.status_code == 200
        assert f"scenario <code>{name}</code>" in response.text
    else:
        assert isinstance(exc, requests.exceptions.SSLError)


def test_failures_surface_when_the_metadata_says(lab: Lab) -> None:
    """Handshake failures raise in wrap_socket; the TLS 1.3 client-cert refusal on read."""
    for name, scenario in lab.scenarios.items():
        if scenario.expect.ok:
            continue
        ctx = ssl.create_default_context(cafile=lab.ca_bundle)
        host = lab.host(name)
        with socket.create_connection((host, lab.port(name)), timeout=5) as raw:
            if scenario.expect.when == "handshake":
                with pytest.raises(ssl.SSLError):
                    ctx.wrap_socket(raw, server_hostname=host)
            else:
                with ctx.wrap_socket(raw, server_hostname=host) as tls:  # completes
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    with pytest.raises(ssl.SSLError) as info:
                        tls.recv(1024)
                    assert scenario.expect.matches(info.value)


def test_client_cert_refusal_is_always_the_alert(lab: Lab) -> None:
    """The scenario promises the certificate_required alert on the first read, on every
    Python. That holds because the lab server lingers after the alert: a server that
    closes at once loses it to a TCP reset about a third of the time (Python 3.13+:
    ConnectionResetError, 3.11/3.12: SSLEOFError; see tests/test_servers.py)."""
    expect = lab.scenarios["client-cert-required"].expect
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    for _ in range(25):
        exc, _ = _verdict(lambda: _get(lab, "client-cert-required", ctx))
        assert expect.matches(exc), repr(exc)
        assert isinstance(exc, ssl.SSLError) and exc.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"


def test_revocation_needs_crl_checking(lab: Lab) -> None:
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    ctx.load_verify_locations(cafile=lab.crl)
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    revoked = lab.scenarios["revoked"]
    assert revoked.strict is not None and revoked.check_flags == ("VERIFY_CRL_CHECK_LEAF",)
    exc, _ = _verdict(lambda: _get(lab, "revoked", ctx))
    assert revoked.strict.matches(exc), repr(exc)
    assert exc.verify_code == 23
    # The same CRL-checking context accepts a certificate that is not on the list.
    assert _get(lab, "valid", ctx).startswith(b"HTTP/1.1 200 OK")


def test_client_certificate_opens_mtls(lab: Lab) -> None:
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    ctx.load_cert_chain(*lab.client_cert)
    body = _get(lab, "client-cert-required", ctx)
    assert body.startswith(b"HTTP/1.1 200 OK")
    assert b"TLS Course Student" in body  # the server saw and verified our certificate
    response = requests.get(
        lab.url("client-cert-required"), verify=lab.ca_bundle, cert=lab.client_cert, timeout=5
    )
    assert response.status_code == 200


def test_protocol_versions(lab: Lab) -> None:
    def version(name: str, ctx: ssl.SSLContext) -> str | None:
        host = lab.host(name)
        with socket.create_connection((host, lab.port(name)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                return tls.version()

    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    assert version("valid", ctx) == "TLSv1.3"
    assert version("tls-1.2-only", ctx) == "TLSv1.2"
    # The TLS 1.0 server really speaks TLS 1.0: a client that lowers its own guard gets in.
    legacy = ssl.create_default_context(cafile=lab.ca_bundle)
    legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1
    assert version("tls-1.0-only", legacy) == "TLSv1"
    assert version("tls-1.1-only", legacy) == "TLSv1.1"


def _lenient(lab: Lab, level: int, minimum: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    ctx.set_ciphers(f"DEFAULT:@SECLEVEL={level}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
    return ctx


@pytest.mark.parametrize("name", ["weak-key", "sha1", "valid", "dh-1024"])
def test_servers_never_speak_tls_1_0_or_1_1_by_accident(lab: Lab, name: str) -> None:
    """Every lab server sets its floor (TLS 1.2) itself. A Debian/Ubuntu Python's default
    minimum is MINIMUM_SUPPORTED, and the weak-key and sha1 servers run at security level
    0, so without the floor they would agree on TLS 1.0 with this lenient client."""
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = _lenient(lab, 0, ssl.TLSVersion.TLSv1)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # only the version is tested
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.maximum_version = version
        host = lab.host(name)
        with socket.create_connection((host, lab.port(name)), timeout=5) as raw:
            with pytest.raises(ssl.SSLError) as info:
                ctx.wrap_socket(raw, server_hostname=host)
        assert info.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", (name, version, info.value)


@pytest.mark.parametrize("name", ["tls-1.0-only", "tls-1.1-only"])
@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("minimum", ["MINIMUM_SUPPORTED", "TLSv1_2"])
def test_legacy_verdict_rule_matches_this_openssl(
    lab: Lab, name: str, level: int, minimum: str
) -> None:
    """helpers.lab.legacy predicts what a client at each security level and minimum meets
    at the TLS 1.0/1.1 servers; here the running OpenSSL has the last word. OpenSSL 3.0:
    level 1-2 with a low minimum agrees on TLS 1.0 and refuses the signature; 3.1+: TLS
    1.0/1.1 only at level 0, so the server's protocol_version alert."""
    from helpers.lab import legacy

    version = legacy.TLS_VERSIONS[lab.scenarios[name].tls_version or ""]
    ctx = _lenient(lab, level, ssl.TLSVersion[minimum])
    predicted = legacy._verdict(version, ssl.OPENSSL_VERSION_INFO, level, ctx.minimum_version)
    exc, _ = _verdict(lambda: _get(lab, name, ctx))
    assert predicted.matches(exc), f"predicted {predicted.describe()}, got {exc!r}"
    if level >= 1 and minimum == "MINIMUM_SUPPORTED":
        expected = (
            legacy.LEGACY_SIGALG if ssl.OPENSSL_VERSION_INFO < (3, 1) else legacy.PROTOCOL_VERSION
        )
        assert predicted == expected


def test_legacy_scenarios_expect_what_this_python_decides(lab: Lab) -> None:
    """The TLS 1.0/1.1 verdict depends on the build: python.org Pythons set a TLS 1.2
    minimum (protocol_version alert everywhere); Debian/Ubuntu Pythons keep
    MINIMUM_SUPPORTED, which on OpenSSL 3.0 gets as far as the legacy signature."""
    from helpers.lab import legacy

    default = ssl.create_default_context()
    low = default.minimum_version in (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.TLSv1)
    expected = (
        legacy.LEGACY_SIGALG
        if low and ssl.OPENSSL_VERSION_INFO < (3, 1)
        else legacy.PROTOCOL_VERSION
    )
    for name in ("tls-1.0-only", "tls-1.1-only"):
        assert lab.scenarios[name].expect == expected
        assert lab.scenarios[name].verdict("requests") == legacy.PROTOCOL_VERSION  # urllib3 2


def test_openssl_3_0_still_completes_tls_1_0_with_rsa_key_transport() -> None:
    """Why a Debian/Ubuntu Python on OpenSSL 3.0 is not protected by its security level:
    with a minimum below TLS 1.2 (their default: MINIMUM_SUPPORTED) and OpenSSL's DEFAULT
    cipher list (their build keeps it), RSA key transport involves no SHA-1/MD5 signature
    and the TLS 1.0 handshake completes at level 2. A python.org-style build drops RSA key
    transport and SHA-1 MACs from its cipher list, so the server finds no shared suite.
    OpenSSL 3.1+ does not offer TLS 1.0 above level 0, so the server refuses the version."""
    authority = pki_ca("TLS 1.0 RSA test CA")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.set_ciphers("AES128-SHA:@SECLEVEL=0")  # RSA key transport, nothing signed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_ctx.minimum_version = server_ctx.maximum_version = ssl.TLSVersion.TLSv1
        client_ctx = ssl.create_default_context()
        client_ctx.minimum_version = ssl.TLSVersion.TLSv1  # what Debian's build leaves open
    authority.issue("localhost", key_type="rsa").configure_server(server_ctx)
    authority.configure_trust(client_ctx)
    assert client_ctx.security_level == 2
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with contextlib.suppress(ssl.SSLError, OSError):
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(16)

    thread = threading.Thread(target=serve, name="tls10-rsa")
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            rsa_kx = "AES128-SHA" in {c["name"] for c in client_ctx.get_ciphers()}
            if ssl.OPENSSL_VERSION_INFO < (3, 1) and rsa_kx:
                with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert (tls.version(), tls.cipher()[0]) == ("TLSv1", "AES128-SHA")
                    tls.sendall(b"x")
            else:
                with pytest.raises(ssl.SSLError) as info:
                    client_ctx.wrap_socket(raw, server_hostname="localhost")
                expected = (
                    "SSLV3_ALERT_HANDSHAKE_FAILURE"  # OpenSSL 3.0, Python's own cipher list
                    if ssl.OPENSSL_VERSION_INFO < (3, 1)
                    else "TLSV1_ALERT_PROTOCOL_VERSION"  # OpenSSL 3.1+: TLS 1.0 not offered
                )
                assert info.value.reason == expected
    finally:
        thread.join(5)
        listener.close()


def test_legacy_rule_table_and_tool_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule of helpers.lab.legacy for versions this machine does not have (the real
    tools and this OpenSSL are checked against live servers above and in
    test_lab_tools.py): OpenSSL 3.1 made TLS 1.0/1.1 level-0 only, curl 8.16 raised its
    own minimum to TLS 1.2."""
    from helpers.lab import legacy

    low, tls12, v10 = ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1
    assert legacy.offers(v10, openssl=(3, 0, 19), security_level=2, minimum=low)
    assert not legacy.offers(v10, openssl=(3, 1, 0), security_level=1, minimum=low)
    assert legacy.offers(v10, openssl=(3, 5, 9), security_level=0, minimum=low)
    assert not legacy.offers(v10, openssl=(3, 0, 19), security_level=0, minimum=tls12)

    def tools(openssl: str, curl: str) -> None:
        answers = {"openssl": openssl, "curl": curl}
        monkeypatch.setattr(legacy, "_run", lambda *cmd: answers[cmd[0]])
        legacy.tool_versions.cache_clear()

    try:
        tools(
            "OpenSSL 3.0.19 27 Jan 2026 (Library: ...)\n",
            "curl 7.88.1 (x86_64) libcurl/7.88.1 OpenSSL/3.0.19 zlib/1.2.13\n",
        )
        assert legacy.tool_versions() == ((3, 0, 19), (7, 88, 1), (3, 0, 19))
        assert legacy.tool_verdict("openssl", v10) == legacy.LEGACY_SIGALG
        assert legacy.tool_verdict("curl", v10) == legacy.LEGACY_SIGALG
        tools(
            "OpenSSL 3.0.19 27 Jan 2026\n", "curl 8.16.0 (x86_64) libcurl/8.16.0 OpenSSL/3.0.19\n"
        )
        assert legacy.tool_verdict("curl", v10) == legacy.PROTOCOL_VERSION  # curl's own minimum
        tools("OpenSSL 3.5.9 29 Sep 2026\n", "curl 8.14.1 (x86_64) libcurl/8.14.1 GnuTLS/3.8.9\n")
        assert legacy.tool_verdict("openssl", v10) == legacy.PROTOCOL_VERSION
        assert legacy.tool_verdict("curl", v10) is None  # not OpenSSL: the lab cannot say
        tools("", "")
        assert legacy.tool_verdict("openssl", v10) is None
    finally:
        legacy.tool_versions.cache_clear()


def test_dh_1024_really_is_dhe(lab: Lab) -> None:
    """With a lenient client the handshake succeeds and uses finite-field DHE."""
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    ctx.set_ciphers("DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")
    host = lab.host("dh-1024")
    with socket.create_connection((host, lab.port("dh-1024")), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.cipher()[0].startswith("DHE-RSA-")


def _served_chain(lab: Lab, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(lab.files.chains[name].read_bytes())


def test_certificates_are_what_the_scenarios_say(lab: Lab) -> None:
    root = x509.load_pem_x509_certificate(lab.ca_bundle.read_bytes())
    valid = _served_chain(lab, "valid")
    assert len(valid) == 2  # leaf + intermediate, never the root
    assert isinstance(valid[0].public_key(), ec.EllipticCurvePublicKey)
    assert valid[1].issuer == root.subject
    assert len(_served_chain(lab, "incomplete-chain")) == 1
    untrusted = _served_chain(lab, "untrusted-root")
    assert untrusted[-1].issuer == untrusted[-1].subject != root.subject
    weak = _served_chain(lab, "weak-key")[0].public_key()
    assert isinstance(weak, rsa.RSAPublicKey) and weak.key_size == 1024
    no_san = _served_chain(lab, "no-san")[0]
    with pytest.raises(x509.ExtensionNotFound):
        no_san.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    bad = _served_chain(lab, "bad-issuer")
    constraints = bad[1].extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False and bad[0].issuer == bad[1].subject


def test_sha1_certificate_is_really_signed_with_sha1(lab: Lab) -> None:
    leaf, inter = _served_chain(lab, "sha1")
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha1"
    assert leaf.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.1"
    # The signature is genuine: the intermediate's key signed these TBS bytes with SHA-1.
    inter.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA1()))
    # ... and the inner signature field agrees with the outer one (RFC 5280 §4.1.1.2).
    assert _tbs_signature_oid(leaf.tbs_certificate_bytes) == bytes.fromhex("2a8648ce3d0401")


def _tbs_signature_oid(tbs: bytes) -> bytes:
    from helpers.lab.build import _der_header

    _, pos, end = _der_header(tbs, 0)
    for _ in range(2):  # skip [0] version and serialNumber
        _, _, pos = _der_header(tbs, pos)
    _, alg_start, _ = _der_header(tbs, pos)
    _, oid_start, oid_end = _der_header(tbs, alg_start)
    return tbs[oid_start:oid_end]


# --------------------------------------------------------------------------- HTTP


def _raw_exchange(lab: Lab, data: bytes, name: str = "valid") -> bytes:
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    return _get(lab, name, ctx, request=data)


def test_keep_alive_and_pipelining(lab: Lab) -> None:
    two = (
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /scenario.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    data = _raw_exchange(lab, two)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert data.count(b"Connection: keep-alive") == 2
    body = data.rsplit(b"\r\n\r\n", 1)[1]
    assert json.loads(body)["name"] == "valid"
    assert json.loads(body)["connection"]["protocol"] == "TLSv1.3"
    # One HTML body only: HEAD has the headers of GET and no body.
    assert data.count(b"<!doctype html>") == 1


def test_session_reuses_one_connection(lab: Lab) -> None:
    with requests.Session() as session:
        for _ in range(3):
            response = session.get(lab.url("valid"), verify=lab.ca_bundle, timeout=5)
            assert response.status_code == 200
        assert response.headers["Connection"] == "keep-alive"
        assert session.head(lab.url("valid"), verify=lab.ca_bundle).text == ""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", b"405"),
        (b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n", b"404"),
        (b"\x00\x01garbage\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", b"505"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"501"),
    ],
)
def test_http_errors(lab: Lab, request_bytes: bytes, status: bytes) -> None:
    data = _raw_exchange(lab, request_bytes + b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 " + status)


def test_http_10_closes(lab: Lab) -> None:
    data = _raw_exchange(lab, b"GET / HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


# --------------------------------------------------------------------------- lifecycle


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_start_stop_twice_and_ports_released() -> None:
    lab = Lab()
    for _ in range(2):
        with lab:
            port = lab.port("valid")
            assert requests.get(lab.url("valid"), verify=lab.ca_bundle, timeout=5).ok
        assert not lab.running
        assert _refused(port)
        # The port is free again: we can bind it ourselves.
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
    with pytest.raises(LabError):
        lab.port("valid")
    lab.stop()  # idempotent


def test_two_labs_at_once() -> None:
    with Lab() as one, Lab() as two:
        assert one.port("valid") != two.port("valid")
        for lab in (one, two):
            assert requests.get(lab.url("valid"), verify=lab.ca_bundle, timeout=5).ok
        one.stop()
        # The names are reference counted: the other lab still resolves by name.
        assert requests.get(two.url("wildcard"), verify=two.ca_bundle, timeout=5).ok
        assert names.lookup(two.host("valid")) == "127.0.0.1"


def test_bind_elsewhere_on_loopback(lab: Lab) -> None:
    """--bind: names follow the bound address (127.0.0.2 is loopback too)."""
    with Lab(bind="127.0.0.2") as other:
        assert other.address("valid") == ("127.0.0.2", other.port("valid"))
        assert names.lookup_all(other.host("valid")) == ["127.0.0.2", "127.0.0.1"]
        assert not _we_listen_on("127.0.0.1", other.port("valid"))
        # Both labs answer by name: the client tries each address, as with a hosts file
        # that lists two addresses for one name.
        for each in (other, lab):
            assert requests.get(each.url("valid"), verify=each.ca_bundle, timeout=5).ok
    assert names.lookup_all(lab.host("valid")) == ["127.0.0.1"]


def _we_listen_on(address: str, port: int) -> bool:
    """Whether a socket of this process listens on ``address:port`` (IPv4, Linux /proc).

    Not "is the port refused": ports are per address, so another process (another lab, an
    ACME server) may listen on 127.0.0.1 with the number the OS gave us on 127.0.0.2.
    """
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                ours.add(link[8:-1])
    # /proc/net/tcp: local address as little-endian hex IPv4 ":" hex port; state 0A = LISTEN
    want = "{:08X}:{:04X}".format(int.from_bytes(socket.inet_aton(address), "little"), port)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A" and fields[9] in ours:
            return True
    return False


def test_get_lab_is_reused_and_restarts() -> None:
    first = get_lab()
    try:
        assert get_lab() is first
        port = first.port("valid")
        assert get_lab().port("valid") == port  # a re-run cell binds nothing new
        first.stop()
        second = get_lab()
        assert second.running and second is not first
    finally:
        get_lab().stop()


def test_unknown_scenario_and_stopped_lab_errors(lab: Lab) -> None:
    with pytest.raises(LabError, match="no lab scenario called 'nope'"):
        lab.url("nope")
    with pytest.raises(LabError, match="not running"):
        _ = Lab().ca_bundle


def test_repr_html(lab: Lab) -> None:
    page = lab._repr_html_()
    for name in NAMES:
        assert lab.url(name) in page
    assert "certificate has expired" in page
    html = SCENARIOS["no-san"]._repr_html_()
    assert "requests" in html and "Hostname mismatch" in html
    assert "Lab" in repr(lab) and "stopped" in repr(Lab())


def test_metadata_is_complete() -> None:
    for scenario in SCENARIOS.values():
        assert scenario.title and scenario.problem and scenario.browser
        if not scenario.expect.ok:
            assert scenario.expect.error and scenario.expect.exception
        assert scenario.host.endswith(".lab.localhost") or scenario.name == "ip-san"
    assert Expect(ok=True).matches(None) and not Expect(ok=True).matches(ValueError())


# --------------------------------------------------------------------------- cache


def test_cache_reuse_rebuild_and_permissions(tmp_path: Path) -> None:
    first = ensure(tmp_path)
    assert first.built
    again = ensure(tmp_path)
    assert not again.built and again.directory == first.directory
    # Private keys are 0600; the root's and the scenarios' intermediate's are not written.
    for key in [*first.keys.values(), first.client_key, first.signer_key, first.acme_ca_key]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key_files = {p.name for p in first.directory.glob("*-key.pem")}
    # Only leaves, the client, the description signer (issue 13) and the online ACME
    # issuing CA (issue 15: it signs on demand; pathLen 0, serverAuth, lab names only).
    assert key_files == {f"{n}-key.pem" for n in SCENARIOS} | {
        "client-key.pem",
        "signer-key.pem",
        "acme-ca-key.pem",
    }
    # A missing file means a rebuild (into a new generation).
    first.keys["valid"].unlink()
    rebuilt = ensure(tmp_path)
    assert rebuilt.built and rebuilt.directory != first.directory
    assert not first.directory.exists()  # the old generation was cleaned up
    # Near expiry means a rebuild too.
    manifest = rebuilt.directory / "manifest.json"
    data = json.loads(manifest.read_text())
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)  # noqa: UP017
    data["rebuild_after"] = past.isoformat()
    manifest.write_text(json.dumps(data))
    assert ensure(tmp_path).built


def test_cache_rebuilds_when_a_recipe_changes(tmp_path: Path) -> None:
    base = {"valid": SCENARIOS["valid"]}
    first = ensure(tmp_path, base)
    changed = {
        "valid": Scenario(
            **{**SCENARIOS["valid"].__dict__, "cert": CertRecipe(names=("x.lab.localhost",))}
        )
    }
    second = ensure(tmp_path, changed)
    assert second.built and second.directory != first.directory
    leaf = x509.load_pem_x509_certificate(second.chains["valid"].read_bytes())
    assert leaf.subject.rfc4514_string() == "CN=x.lab.localhost"


def test_cache_built_with_other_dates_is_rebuilt(tmp_path: Path) -> None:
    """A learner's cache from an older course version (other dates) is not reused."""
    base = {"valid": SCENARIOS["valid"], "expired": SCENARIOS["expired"]}
    # As the lab was built before its CAs were backdated (root and intermediate from today).
    older = Timeline(root_backdate=0, intermediate_backdate=0, expired_from=100)
    old = ensure(tmp_path, base, timeline=older)
    assert old.built
    assert not ensure(tmp_path, base, timeline=older).built  # same dates: reused
    old_root = x509.load_pem_x509_certificate(old.ca_bundle.read_bytes())
    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017
    assert now - old_root.not_valid_before_utc < dt.timedelta(days=1)

    current = ensure(tmp_path, base)  # today's TIMELINE
    assert current.built and current.directory != old.directory
    assert not old.directory.exists()  # the old generation was cleaned up
    root = x509.load_pem_x509_certificate(current.ca_bundle.read_bytes())
    age = now - root.not_valid_before_utc
    assert (
        dt.timedelta(days=TIMELINE.root_backdate)
        <= age
        < dt.timedelta(days=TIMELINE.root_backdate + 1)
    )
    chain = x509.load_pem_x509_certificates(current.chains["expired"].read_bytes())
    leaf, inter = chain[0], chain[1]
    assert inter.not_valid_before_utc <= leaf.not_valid_before_utc  # issued by an existing CA
    assert now - leaf.not_valid_before_utc >= dt.timedelta(days=TIMELINE.expired_from)
    assert not ensure(tmp_path, base).built
    # Every field of the timeline is part of the key, not only the CA dates.
    for field in ("future_from", "crl_days", "intermediate_lifetime"):
        changed = replace(TIMELINE, **{field: getattr(TIMELINE, field) + 1})
        assert build_fingerprint(base, changed) != build_fingerprint(base), field


def test_cache_location_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TLS_COURSE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TLS_COURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "tls-course"
    repo = Path(__file__).resolve().parent.parent
    assert repo not in Path(os.environ.get("TLS_COURSE_CACHE", str(cache_dir()))).parents


# --------------------------------------------------------------------------- ACME (issue 15)

ROOT = Path(__file__).resolve().parent.parent


def _served_cert(url: str, cafile: str | Path) -> x509.Certificate:
    """The certificate an HTTPS URL's server sends, after verifying it against ``cafile``."""
    host, port = re.fullmatch(r"https://([^/:]+):(\d+)/.*", url).groups()  # type: ignore[union-attr]
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der)


def test_lab_json_has_the_acme_entry() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        summary = json.loads(proc.stdout.readline())
        entry = summary["acme"]
        assert set(entry) == {"directory", "http01_port"}
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+/directory", entry["directory"]), entry
        assert isinstance(entry["http01_port"], int) and 0 < entry["http01_port"] < 65536
        # The directory answers over HTTPS that the lab's ca_bundle verifies (RFC 8555 §7.1.1) ...
        answer = requests.get(entry["directory"], verify=summary["ca_bundle"], timeout=10)
        assert answer.status_code == 200, answer.text
        directory = answer.json()
        assert {"newNonce", "newAccount", "newOrder", "revokeCert"} <= set(directory), directory
        assert {"classic", "shortlived"} <= set(directory["meta"]["profiles"]), directory
        # ... newNonce hands out a nonce (§7.2) ...
        nonce = requests.head(directory["newNonce"], verify=summary["ca_bundle"], timeout=10)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", nonce.headers["Replay-Nonce"]), nonce.headers
        # ... and its own certificate comes from the lab's ACME CA.
        served = _served_cert(entry["directory"], summary["ca_bundle"])
        assert "TLS Course Lab ACME CA" in served.issuer.rfc4514_string()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_the_acme_ca_runs_with_the_lab_on_loopback_only(tmp_path: Path) -> None:
    lab = Lab(directory=tmp_path, bind="127.0.0.2")
    with pytest.raises(LabError, match="not running"):
        lab.acme  # noqa: B018
    with lab:
        # Loopback 127.0.0.1 whatever the lab's bind: HTTP-01 validates on this machine.
        assert lab.acme.directory.startswith("https://127.0.0.1:")
        assert lab.acme.http01_port > 0
        table = _table(lab)
        assert lab.acme.directory in table and f"--http-01-port {lab.acme.http01_port}" in table
        port = int(lab.acme.directory.split(":")[2].split("/")[0])
    with pytest.raises(LabError, match="not running"):
        lab.acme  # noqa: B018
    with pytest.raises(ConnectionRefusedError):  # it stopped with the lab
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_acme_ca_is_an_issuing_ca_fenced_in(tmp_path: Path) -> None:
    files = ensure(tmp_path)
    root = x509.load_pem_x509_certificate(files.ca_bundle.read_bytes())
    acme = x509.load_pem_x509_certificate(files.acme_ca.read_bytes())
    assert stat.S_IMODE(files.acme_ca_key.stat().st_mode) == 0o600
    assert acme.issuer == root.subject and "TLS Course Lab ACME CA" in acme.subject.rfc4514_string()
    acme.verify_directly_issued_by(root)
    ext = acme.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    ]
    constraints = ext.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert constraints.value == root.extensions.get_extension_for_class(x509.NameConstraints).value
    # Its key signs on demand, so what a thief could issue with it is what openssl refuses:
    key = serialization.load_pem_private_key(files.acme_ca_key.read_bytes(), password=None)
    issuer = pki_ca.from_parts(acme, key)
    verdicts = {}
    for label, name, usage, purpose in [
        ("lab server", "www.lab.localhost", "server", "sslserver"),
        ("bank", "www.bank.example", "server", "sslserver"),
        ("client", "student.lab.localhost", "client", "sslclient"),
    ]:
        leaf = issuer.issue(name, usages=(usage,))
        path = tmp_path / f"{label}.pem"
        path.write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
        result = subprocess.run(
            ["openssl", "verify", "-purpose", purpose, "-CAfile", str(files.ca_bundle),
             "-untrusted", str(files.acme_ca), str(path)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        verdicts[label] = (result.returncode, result.stdout + result.stderr)
    assert verdicts["lab server"][0] == 0, verdicts
    assert "permitted subtree violation" in verdicts["bank"][1], verdicts
    assert "unsuitable certificate purpose" in verdicts["client"][1], verdicts


def test_a_joined_lab_has_no_acme_ca() -> None:
    remote = RemoteLab("http://127.0.0.1:9/#" + "AB" * 32)
    with pytest.raises(LabError, match="a joined lab has no ACME CA") as caught:
        remote.acme  # noqa: B018
    assert "Lab()" in str(caught.value)


def test_a_lab_whose_acme_ca_cannot_start_undoes_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers.acme.server import AcmeServer

    def refuse(self: AcmeServer) -> AcmeServer:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(AcmeServer, "start", refuse)
    lab = Lab(directory=tmp_path, bind="127.0.0.2")  # its own entries in the hosts table
    before = set(threading.enumerate())
    with pytest.raises(OSError, match="Address already in use"):
        lab.start()
    assert not lab.running
    # No name left in the hosts table, no proxy or scenario server left serving.
    assert "127.0.0.2" not in names.lookup_all(lab.host("valid"))
    assert set(threading.enumerate()) <= before


def test_accepted_counts_connections(lab: Lab) -> None:
    """Lab.accepted grows by one per connection to a scenario port (bench/hub.py reads it)."""
    before = lab.accepted
    for _ in range(3):
        assert requests.get(lab.url("valid"), verify=lab.ca_bundle, timeout=5).ok
    # requests opens a new connection per call without a Session: three at least.
    assert lab.accepted >= before + 3
    with pytest.raises(LabError, match="not running"):
        _ = Lab().accepted
