"""The OCSP responder and client of notebook 08, over HTTP on loopback."""

from __future__ import annotations

import base64
import http.client
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from helpers import ocsp, pki
from helpers.errors import OCSPError


@pytest.fixture(scope="module")
def pkix():
    root = pki.CA("OCSP Test Root")
    ca = root.create_intermediate("OCSP Test Issuing CA")
    good, bad = ca.issue("good.lab.localhost"), ca.issue("bad.lab.localhost")
    ca.revoke(bad, reason="key_compromise")
    return root, ca, good, bad


def test_good_and_revoked_answers_are_signed_and_checked(pkix):
    _root, ca, good, bad = pkix
    with ocsp.Responder(ca) as responder:
        ok = ocsp.check_ocsp(good.cert, ca.cert, responder.url)
        revoked = ocsp.check_ocsp(bad.cert, ca.cert, responder.url)
    assert ok.status == "good" and ok.nonce == "echoed" and ok.signed_by == "OCSP Test Issuing CA"
    assert ok.this_update <= ok.produced_at < ok.next_update
    assert revoked.status == "revoked" and revoked.revocation_reason == "key_compromise"
    assert [s.status for s in responder.served] == ["good", "revoked"]
    assert "REVOKED" in revoked._repr_html_()


def test_the_certid_names_the_issuer_like_cryptography_does(pkix):
    _root, ca, good, _bad = pkix
    request = ocsp.build_request(good.cert, ca.cert, nonce=b"n" * 16)
    assert ocsp._issuer_hashes(ca.cert, hashes.SHA1()) == (
        request.issuer_name_hash,
        request.issuer_key_hash,
    )
    assert request.serial_number == good.cert.serial_number


def test_get_requests_and_the_aia_url_work(pkix):
    _root, ca, _good, _bad = pkix
    with ocsp.Responder(ca) as responder:
        aia = x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(responder.url),
                )
            ]
        )
        leaf = ca.issue("aia.lab.localhost", extensions=[(aia, False)])
        assert ocsp.ocsp_url(leaf.cert) == responder.url
        assert ocsp.check_ocsp(leaf.cert, ca.cert).status == "good"  # URL from the certificate
        der = ocsp.build_request(leaf.cert, ca.cert).public_bytes(serialization.Encoding.DER)
        path = "/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        host, port = responder.url.split("//")[1].rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", path)
        answer = x509_ocsp.load_der_ocsp_response(conn.getresponse().read())
        conn.close()
    assert answer.certificate_status == x509_ocsp.OCSPCertStatus.GOOD


def test_foreign_issuers_and_unknown_serials(pkix):
    root, ca, good, _bad = pkix
    stranger = root.issue("stranger.lab.localhost")
    with ocsp.Responder(ca, issued=[good.cert]) as responder:
        with pytest.raises(OCSPError, match="unauthorized"):
            ocsp.check_ocsp(stranger.cert, root.cert, responder.url)
        unlisted = ca.issue("unlisted.lab.localhost")
        assert ocsp.check_ocsp(unlisted.cert, ca.cert, responder.url).status == "unknown"


def test_only_the_issuer_or_its_delegate_may_sign(pkix):
    _root, ca, _good, bad = pkix
    impostor = pki.self_signed("ocsp.evil.example")
    with (
        ocsp.Responder(ca, signer=impostor) as responder,
        pytest.raises(OCSPError, match="not issued"),
    ):
        ocsp.check_ocsp(bad.cert, ca.cert, responder.url)
    plain = ca.issue("responder.lab.localhost")  # issued by the CA, but not for OCSP
    with (
        ocsp.Responder(ca, signer=plain) as responder,
        pytest.raises(OCSPError, match="OCSPSigning"),
    ):
        ocsp.check_ocsp(bad.cert, ca.cert, responder.url)
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
    delegate = ca.issue("ocsp.lab.localhost", usages=(), extensions=[(eku, False)])
    with ocsp.Responder(ca, signer=delegate) as responder:
        result = ocsp.check_ocsp(bad.cert, ca.cert, responder.url)
    assert result.status == "revoked" and "delegated" in result.signed_by


class _Tampering(ocsp.Responder):
    """Flips the last byte of every answer: the signature."""

    def answer(self, der: bytes) -> bytes:
        data = bytearray(super().answer(der))
        data[-1] ^= 0x01
        return bytes(data)


def test_a_tampered_answer_is_rejected(pkix):
    _root, ca, good, _bad = pkix
    with _Tampering(ca) as responder, pytest.raises(OCSPError, match="signature"):
        ocsp.check_ocsp(good.cert, ca.cert, responder.url)


def test_a_stale_answer_is_rejected(pkix):
    import datetime as dt

    _root, ca, good, _bad = pkix
    with ocsp.Responder(ca, validity=dt.timedelta(seconds=-600)) as responder:
        with pytest.raises(OCSPError, match="stale"):
            ocsp.check_ocsp(good.cert, ca.cert, responder.url)


def test_remote_responders_need_live_mode(pkix):
    from helpers.errors import LiveModeOff

    _root, ca, good, _bad = pkix
    with pytest.raises(LiveModeOff):
        ocsp.check_ocsp(good.cert, ca.cert, "http://ocsp.example.com/")


class _Canned(ocsp.Responder):
    """Serves one prepared DER answer, whatever the request (for answers Responder won't make)."""

    def __init__(self, ca, der: bytes) -> None:
        super().__init__(ca)
        self.der = der

    def answer(self, der: bytes) -> bytes:
        return self.der


def _response(ca, cert, *, key, responder, certificates=()):
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017
    builder = (
        x509_ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=ca.cert,
            algorithm=hashes.SHA1(),
            cert_status=x509_ocsp.OCSPCertStatus.GOOD,
            this_update=now - dt.timedelta(minutes=1),
            next_update=now + dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(x509_ocsp.OCSPResponderEncoding.NAME, responder)
    )
    if certificates:
        builder = builder.certificates(list(certificates))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_the_responder_id_must_name_the_certificate_that_signed(pkix):
    root, ca, good, _bad = pkix
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
    delegate = ca.issue("ocsp2.lab.localhost", usages=(), extensions=[(eku, False)])
    stranger = root.issue("stranger.lab.localhost")
    # The delegate is the *second* certificate: the ResponderID, not the order, says which.
    fine = _response(
        ca,
        good.cert,
        key=delegate.key,
        responder=delegate.cert,
        certificates=[stranger.cert, delegate.cert],
    )
    with _Canned(ca, fine) as responder:
        result = ocsp.check_ocsp(good.cert, ca.cert, responder.url, nonce=False)
    assert result.status == "good" and result.signed_by.startswith("ocsp2.lab.localhost")
    # Signed by somebody whose certificate the response does not include: nothing to check.
    nobody = _response(ca, good.cert, key=stranger.key, responder=stranger.cert)
    with _Canned(ca, nobody) as responder, pytest.raises(OCSPError, match="ResponderID"):
        ocsp.check_ocsp(good.cert, ca.cert, responder.url, nonce=False)


def test_an_expired_delegated_responder_proves_nothing(pkix):
    import datetime as dt

    _root, ca, _good, bad = pkix
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
    expired = ca.issue(
        "old-ocsp.lab.localhost",
        usages=(),
        extensions=[(eku, False)],
        not_before=dt.timedelta(days=-30),
        not_after=dt.timedelta(days=-1),
    )
    with (
        ocsp.Responder(ca, signer=expired) as responder,
        pytest.raises(OCSPError, match="valid only from"),
    ):
        ocsp.check_ocsp(bad.cert, ca.cert, responder.url)


def test_rsa_pss_signed_answers_from_openssl_are_accepted(tmp_path):
    """`openssl ocsp` signs with RSASSA-PSS on request; the checker must not call that forged."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: it makes the RSA-PSS response")
    ca = pki.CA("PSS Issuing CA", key_type="rsa")
    leaf = ca.issue("pss.lab.localhost")
    files = ca.write(tmp_path, "ca")
    expiry = leaf.cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    subject = "/" + "/".join(a.rfc4514_string() for a in leaf.cert.subject.rdns)
    (tmp_path / "index.txt").write_text(
        f"V\t{expiry}\t\t{leaf.cert.serial_number:X}\tunknown\t{subject}\n"
    )
    request = ocsp.build_request(leaf.cert, ca.cert, nonce=None)
    (tmp_path / "req.der").write_bytes(request.public_bytes(serialization.Encoding.DER))
    subprocess.run(
        [
            openssl,
            "ocsp",
            "-index",
            "index.txt",
            "-CA",
            files.cert.name,
            "-rsigner",
            files.cert.name,
            "-rkey",
            files.key.name,
            "-reqin",
            "req.der",
            "-respout",
            "resp.der",
            "-rmd",
            "sha256",
            "-rsigopt",
            "rsa_padding_mode:pss",
            "-ndays",
            "1",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=30,
    )
    der = (tmp_path / "resp.der").read_bytes()
    parsed = x509_ocsp.load_der_ocsp_response(der)
    assert parsed.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.RSASSA_PSS
    with _Canned(ca, der) as responder:
        result = ocsp.check_ocsp(leaf.cert, ca.cert, responder.url, nonce=False)
    assert result.status == "good" and result.signed_by == "PSS Issuing CA"
    at = der.find(parsed.signature) + 10  # flip one bit inside the PSS signature itself
    tampered = der[:at] + bytes([der[at] ^ 1]) + der[at + 1 :]
    with _Canned(ca, tampered) as responder, pytest.raises(OCSPError, match="signature"):
        ocsp.check_ocsp(leaf.cert, ca.cert, responder.url, nonce=False)


# --------------------------------------------------------------------------- issue 13 (L2, N3, L5)

_BAD_LENGTHS = [
    ("Content-Length: -1\r\n", b"HTTP/1.1 400"),  # was read(-1): until the client hung up
    ("Content-Length: 1e3\r\n", b"HTTP/1.1 400"),
    ("Content-Length: 100\r\nContent-Length: 7\r\n", b"HTTP/1.1 400"),  # N3
    ("", b"HTTP/1.1 411"),
    ("Content-Length: 16385\r\n", b"HTTP/1.1 413"),
]


@pytest.mark.parametrize(("lines", "status"), _BAD_LENGTHS, ids=[s for s, _ in _BAD_LENGTHS])
def test_the_responder_refuses_bad_lengths_before_reading(pkix, lines, status, capfd):
    import socket

    _root, ca, good, _bad = pkix
    der = ocsp.build_request(good.cert, ca.cert).public_bytes(serialization.Encoding.DER)
    with ocsp.Responder(ca) as responder:
        with socket.create_connection(responder.address, timeout=5) as s:
            s.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                + lines.encode()
                + b"\r\n"
                + der
                + b"A" * 100_000  # more follows; the connection stays open
            )
            try:
                answer = s.recv(4096).split(b"\r\n")[0]
            except TimeoutError:
                answer = b"(no answer: the responder is still reading)"
        # It still answers an honest client.
        assert ocsp.check_ocsp(good.cert, ca.cert, responder.url).status == "good"
    assert answer.startswith(status), answer
    assert [s.status for s in responder.served] == ["good"]  # the refused body was not parsed
    assert capfd.readouterr().err == ""


def test_idle_clients_of_the_responder_are_let_go(pkix):
    import socket
    import threading
    import time

    _root, ca, _good, _bad = pkix
    responder = ocsp.Responder(ca)
    responder.idle_timeout = 1.0
    with responder:
        baseline = threading.active_count()
        idle = [socket.create_connection(responder.address, timeout=5) for _ in range(200)]
        try:
            deadline = time.monotonic() + 15  # 1 s timeout, slack for a loaded machine
            while threading.active_count() > baseline and time.monotonic() < deadline:
                time.sleep(0.05)
            assert threading.active_count() <= baseline, (
                f"{threading.active_count() - baseline} handler threads still alive"
            )
        finally:
            for s in idle:
                s.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_the_responder_binds_loopback_unless_told_otherwise(pkix, host):
    from helpers.errors import UsageError

    _root, ca, _good, _bad = pkix
    with pytest.raises(UsageError, match="allow_network=True"):
        ocsp.Responder(ca, host=host)
    assert not ocsp.Responder(ca, host=host, allow_network=True).running  # not started


# --------------------------------------------------------------------------- issue 13 (N1, L8)


def _panicking(*args, **kwargs):
    """What cryptography's Rust code raises when it panics (see tests/test_pki.py)."""
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    raise panic("assertion failed: simulated")


class _LazyPanic:
    """A request whose extensions (parsed lazily, on first use) make the Rust code panic."""

    serial_number = 7

    @property
    def extensions(self):
        _panicking()


def _post_request(responder, der: bytes) -> x509_ocsp.OCSPResponse:
    conn = http.client.HTTPConnection(*responder.address, timeout=5)
    try:
        conn.request("POST", "/", der, {"Content-Type": "application/ocsp-request"})
        reply = conn.getresponse()
        assert reply.status == 200, reply.status
        return x509_ocsp.load_der_ocsp_response(reply.read())
    finally:
        conn.close()


@pytest.mark.parametrize("loader", [_panicking, lambda der: _LazyPanic()], ids=["load", "lazy"])
def test_a_panic_parsing_a_request_is_malformed_request(pkix, monkeypatch, capfd, loader):
    """RFC 6960 §2.3: a request the responder cannot read gets malformedRequest. A Rust
    panic (a BaseException) used to kill the handler's thread: no answer, a traceback."""
    _root, ca, good, _bad = pkix
    der = ocsp.build_request(good.cert, ca.cert).public_bytes(serialization.Encoding.DER)
    capfd.readouterr()
    with ocsp.Responder(ca) as responder:
        with monkeypatch.context() as patched:
            patched.setattr(x509_ocsp, "load_der_ocsp_request", loader)
            answer = _post_request(responder, der)
        assert answer.response_status == x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        # ... and the responder goes on answering honest clients.
        assert ocsp.check_ocsp(good.cert, ca.cert, responder.url).status == "good"
    assert [s.status for s in responder.served] == ["malformed_request", "good"]
    assert capfd.readouterr().err == ""


def test_a_panic_reading_the_answer_is_an_ocsp_error(pkix, monkeypatch):
    _root, ca, good, _bad = pkix
    with ocsp.Responder(ca) as responder:
        monkeypatch.setattr(x509_ocsp, "load_der_ocsp_response", _panicking)
        with pytest.raises(OCSPError, match="panicked") as info:
            ocsp.check_ocsp(good.cert, ca.cert, responder.url)
    assert "\n" not in str(info.value) and info.value.hint




@pytest.mark.parametrize("host", ["ocsp.lab.localhost", "ocsp.lab.localhost\u3002"])
def test_a_lab_responder_with_no_lab_running_never_reaches_the_resolver(pkix, no_lab_spy, host):
    from helpers.errors import LabError

    _root, ca, good, _bad = pkix
    with pytest.raises(LabError, match="no lab is running") as info:
        ocsp.check_ocsp(good.cert, ca.cert, f"http://{host}:8080/")
    assert "\n" not in str(info.value) and info.value.hint
    assert no_lab_spy == []


def test_local_names_are_recognised_however_they_are_spelled():
    for host in ("LOCALHOST.", "ocsp.lab.localhost\u3002", "ocsp\uff0elab.localhost", "[::1]"):
        assert ocsp._is_local(host), host
    for host in ("example.com\u3002", "localhost.example.com", "127.0.0.1.nip.io"):
        assert not ocsp._is_local(host), host
