"""certbot, the reference ACME client, against the lab's ACME CA (issue 15, notebook 10).

certbot runs as a learner would run it, a real subprocess (the console script next to
this Python), with HTTP-01 in standalone mode on the loopback port the lab's ACME CA
validates (``lab.acme.http01_port``), and trusting the lab root for the ACME connection
through ``REQUESTS_CA_BUNDLE`` (never ``--no-verify-ssl``). The lab runs in this process
(``Lab(directory=...)``), so a test can move a certificate's ARI window; certbot cannot
see this process's hosts table (:mod:`helpers.names`) and needs not: the ACME CA
resolves names itself (``helpers/lab/__init__.py``: HTTP-01 connects to loopback).

What is checked, each on its own output: the certificate certbot saved verifies against
the lab chain (``openssl verify``), Python's ``ssl`` serves it and ``curl --cacert``
fetches a page from it; the ``shortlived`` profile (certbot's ``--preferred-profile``)
gives 160 hours; ``certbot renew`` renews a fresh certificate because ACME Renewal
Information (RFC 9773) says so, not because of its age; ``certbot revoke`` puts it in
the ACME CA's CRL (RFC 8555 §7.6), which ``openssl verify -crl_check`` then applies.

What certbot 5.8.0 does against the lab server (read in its debug log, December 2026):

* ``certbot renew`` without a terminal first sleeps a random 1-480 s when a certificate
  is due (to spread renewals at Let's Encrypt): ``--no-random-sleep-on-renew``.
* It checks ARI with an unauthenticated GET of ``renewalInfo/CERTID`` (RFC 9773 §4.1)
  and stores the answer's ``Retry-After`` (six hours here): a second ``renew`` within
  that time skips ARI and falls back to its own rule (two thirds of the lifetime; half
  for a certificate of under 10 days).
* Its renewal order carries no ``"replaces"`` (RFC 9773 §5 makes it optional); the lab
  server accepts orders with and without it.
* Without ``--preferred-profile`` its order has no ``"profile"``: the server's default
  (``classic``) applies. ``--preferred-profile`` first reads the directory's
  ``meta.profiles``.
* Its CSR has an empty subject and the names in subjectAltName only (RFC 8555 §7.4
  allows it); the certificate follows suit, with a critical SAN (RFC 5280 §4.2.1.6).
* An error shows the problem's ``detail`` on the terminal and its ``type`` only in the
  log (``urn:ietf:params:acme:error:rejectedIdentifier``).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from helpers.acme.ari import RenewalWindow, cert_id
from helpers.lab import Lab

CERTBOT = Path(sys.executable).with_name("certbot")

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not CERTBOT.exists(), reason=f"certbot is not installed next to {sys.executable}"
    ),
]

UTC = dt.timezone.utc  # noqa: UP017 - the same spelling on every Python the course supports


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(directory=tmp_path_factory.mktemp("acme-lab")) as running:
        yield running


def _help_all() -> str:
    return subprocess.run(
        [str(CERTBOT), "--help", "all"], capture_output=True, text=True, timeout=60
    ).stdout


def _env(lab: Lab) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    # requests (under certbot's acme library) verifies with this bundle when verify=True.
    env["REQUESTS_CA_BUNDLE"] = str(lab.ca_bundle)
    return env


def _certbot(lab: Lab, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run certbot with its three directories under ``work``; fail with its log if it fails."""
    dirs = ["--config-dir", str(work / "config"), "--work-dir", str(work / "work")]
    dirs += ["--logs-dir", str(work / "logs")]
    result = subprocess.run(
        [str(CERTBOT), *args, *dirs, "--non-interactive"],
        env=_env(lab),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        log = work / "logs" / "letsencrypt.log"
        tail = log.read_text()[-6000:] if log.exists() else "(no log)"
        pytest.fail(f"certbot {args[0]} failed:\n{result.stdout}\n{result.stderr}\n{tail}")
    return result


def _obtain(lab: Lab, work: Path, name: str, *extra: str) -> Path:
    """``certbot certonly --standalone`` for ``name``; the lineage's live directory."""
    _certbot(
        lab, work, "certonly", "--standalone",
        "--http-01-address", "127.0.0.1", "--http-01-port", str(lab.acme.http01_port),
        "--server", lab.acme.directory, "-d", name, "--cert-name", name,
        "--agree-tos", "--register-unsafely-without-email", *extra,
    )  # fmt: skip
    return work / "config" / "live" / name


def _leaf(live: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())


def _openssl_verify(lab: Lab, live: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(lab.ca_bundle),
         "-untrusted", str(live / "chain.pem"), *extra, str(live / "cert.pem")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = b"served with the certificate certbot obtained\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _serve_and_curl(lab: Lab, live: Path, name: str) -> str:
    """Serve ``live``'s fullchain with Python's ssl; fetch it with curl trusting the lab root."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(live / "fullchain.pem", live / "privkey.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        fetched = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "10", "--noproxy", "*",
             "--cacert", str(lab.ca_bundle), "--resolve", f"{name}:{port}:127.0.0.1",
             f"https://{name}:{port}/"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert fetched.returncode == 0, fetched.stderr
    return fetched.stdout


def test_certbot_obtains_renews_by_ari_and_revokes(lab: Lab, tmp_path: Path) -> None:
    name = f"www-{secrets.token_hex(3)}.lab.localhost"
    live = _obtain(lab, tmp_path, name)

    # The saved certificate: issued by the lab's ACME CA for exactly that name, and it
    # verifies against the lab root with the chain certbot saved.
    cert = _leaf(live)
    assert cert.issuer.rfc4514_string() == "O=TLS Course,CN=TLS Course Lab ACME CA"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]
    verified = _openssl_verify(lab, live)
    assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stdout + verified.stderr
    assert cert in lab.acme.issued
    # ... and it works: Python's ssl serves it, curl trusts it through the lab root.
    assert _serve_and_curl(lab, live, name) == "served with the certificate certbot obtained\n"

    # ARI (RFC 9773): the CA moves the window into the past; certbot renew renews this
    # seconds-old certificate, which its own rule (two thirds of the lifetime) would keep.
    now = dt.datetime.now(UTC)
    lab.acme.suggest_renewal(
        cert, RenewalWindow(start=now - dt.timedelta(hours=2), end=now - dt.timedelta(hours=1))
    )
    # --no-random-sleep-on-renew: without a terminal, certbot renew first sleeps a random
    # 1-480 s (to spread renewals over time at Let's Encrypt), but only when it renews.
    renewed = _certbot(lab, tmp_path, "renew", "--cert-name", name, "--no-random-sleep-on-renew")
    assert "renew" in (renewed.stdout + renewed.stderr).lower()
    log = (tmp_path / "logs" / "letsencrypt.log").read_text()
    assert f"GET /renewal-info/{cert_id(cert)} " in log  # RFC 9773 §4.1: the CertID path
    assert "Certificate is due for renewal" in log
    new = _leaf(live)
    assert new.serial_number != cert.serial_number, "certbot renew did not renew by ARI"
    assert _openssl_verify(lab, live).returncode == 0

    # Revocation (RFC 8555 §7.6): the ACME CA's CRL lists the serial, and openssl applies it.
    _certbot(lab, tmp_path, "revoke", "--cert-path", str(live / "cert.pem"),
             "--reason", "keycompromise", "--no-delete-after-revoke",
             "--server", lab.acme.directory)  # fmt: skip
    crl = x509.load_pem_x509_crl(lab.acme.crl_pem)
    entry = crl.get_revoked_certificate_by_serial_number(new.serial_number)
    assert entry is not None, "the revoked certificate is not in the ACME CA's CRL"
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise  # certbot --reason keycompromise (1)
    acme_ca = x509.load_pem_x509_certificate(lab.files.acme_ca.read_bytes())
    assert crl.issuer == acme_ca.subject and crl.is_signature_valid(acme_ca.public_key())  # type: ignore[arg-type]
    crl_file = tmp_path / "acme-crl.pem"
    crl_file.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    checked = _openssl_verify(lab, live, "-crl_check", "-CRLfile", str(crl_file))
    assert checked.returncode != 0 and "certificate revoked" in checked.stdout + checked.stderr


def test_certbot_asks_for_the_shortlived_profile(lab: Lab, tmp_path: Path) -> None:
    if "--preferred-profile" not in _help_all():
        pytest.skip("this certbot has no --preferred-profile (profiles came in certbot 4.0)")
    name = f"short-{secrets.token_hex(3)}.lab.localhost"
    cert = _leaf(_obtain(lab, tmp_path, name, "--preferred-profile", "shortlived"))
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    # Let's Encrypt's "shortlived" profile: 160 hours (a little over six days).
    assert dt.timedelta(hours=159) <= lifetime <= dt.timedelta(hours=161), lifetime


def test_certbot_is_refused_a_name_outside_the_lab(lab: Lab, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CERTBOT), "certonly", "--standalone", "--http-01-address", "127.0.0.1",
         "--http-01-port", str(lab.acme.http01_port), "--server", lab.acme.directory,
         "-d", "www.bank.example", "--agree-tos", "--register-unsafely-without-email",
         "--non-interactive", "--config-dir", str(tmp_path / "c"),
         "--work-dir", str(tmp_path / "w"), "--logs-dir", str(tmp_path / "l")],
        env=_env(lab), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    # certbot shows the problem's detail (RFC 8555 §6.7), its log the type as well.
    shown = result.stdout + result.stderr
    assert "issues only for names under lab.localhost" in shown, shown
    log = (tmp_path / "l" / "letsencrypt.log").read_text()
    assert "urn:ietf:params:acme:error:rejectedIdentifier" in log
    assert not (tmp_path / "c" / "live" / "www.bank.example").exists()
