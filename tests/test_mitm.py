"""The man in the middle of notebook 07, attacked by real clients over loopback."""

from __future__ import annotations

import base64
import hashlib
import http.client
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from helpers import live, names, pki
from helpers.errors import LiveModeOff, UsageError
from helpers.mitm import Interceptor, parse_http, spki_pin
from helpers.servers import LoginServer
from tests.polling import wait_for

BANK = "bank.lab.localhost"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A bank with a certificate from a public CA, and the CA file clients trust."""
    tmp = tmp_path_factory.mktemp("mitm")
    public = pki.CA("Public Web CA")
    bank_leaf = public.issue(BANK)
    cafile = tmp / "public.pem"
    cafile.write_bytes(public.cert_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    bank_leaf.configure_server(ctx)
    names.add(BANK)
    with LoginServer(tls=ctx) as bank:
        yield {"public": public, "leaf": bank_leaf, "cafile": str(cafile), "bank": bank, "tmp": tmp}
    names.remove(BANK)


def _login(port: int, verify, password: str) -> requests.Response:
    return requests.post(
        f"https://{BANK}:{port}/login",
        data={"user": "ada", "password": password},
        verify=verify,
        timeout=5,
    )


def test_a_client_that_does_not_verify_hands_over_the_password(world):
    bank = world["bank"]
    attacker = pki.self_signed(BANK)
    careless = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    careless.check_hostname = False
    careless.verify_mode = ssl.CERT_NONE  # the victim's mistake, on purpose
    with Interceptor(bank.address, attacker, upstream_cafile=world["cafile"]) as mitm:
        conn = http.client.HTTPSConnection(BANK, mitm.port, context=careless, timeout=5)
        body = f"user=ada&password={bank.password.replace(' ', '+')}"
        conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        page = conn.getresponse().read().decode()
        conn.close()
        (record,) = mitm.wait()
    assert "Welcome, ada" in page  # the victim notices nothing
    assert mitm.stolen == [{"user": "ada", "password": bank.password}]
    assert record.accepted and record.sni == BANK
    assert record.upstream_cert is not None and record.upstream_cert == world["leaf"].cert
    assert record.responses[0].start_line.startswith("HTTP/1.1 200")
    assert "Welcome" in record._repr_html_() and bank.password in record._repr_html_()


def test_a_verifying_client_refuses_a_self_signed_attacker(world):
    attacker = pki.self_signed(BANK)
    with Interceptor(world["bank"].address, attacker, upstream_cafile=world["cafile"]) as mitm:
        with pytest.raises(requests.exceptions.SSLError) as info:
            _login(mitm.port, world["cafile"], world["bank"].password)
        (record,) = mitm.wait()
    assert "self-signed certificate" in str(info.value)
    assert not record.accepted and "UNKNOWN_CA" in (record.refused or "")
    assert record.sni == BANK  # SNI is sent in the clear, before any certificate
    assert mitm.stolen == [] and record.upstream_cert is None


def test_a_trusted_certificate_for_another_name_is_a_hostname_mismatch(world):
    attacker = world["public"].issue("evil.lab.localhost")  # a real certificate, own domain
    with Interceptor(world["bank"].address, attacker, upstream_cafile=world["cafile"]) as mitm:
        ctx = ssl.create_default_context(cafile=world["cafile"])
        with (
            socket.create_connection(mitm.address, timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError) as info,
        ):
            ctx.wrap_socket(raw, server_hostname=BANK)
        mitm.wait()
    assert info.value.verify_code == 62
    assert mitm.stolen == []


def test_a_trusted_forgery_passes_verification_but_not_the_pin(world, tmp_path):
    corporate = pki.CA("Corporate Inspection CA")
    forged = corporate.issue(BANK)
    both = tmp_path / "both.pem"
    both.write_bytes(world["public"].cert_pem + corporate.cert_pem)
    with Interceptor(world["bank"].address, forged, upstream_cafile=world["cafile"]) as mitm:
        response = _login(mitm.port, str(both), world["bank"].password)
        mitm.wait()
        ctx = ssl.create_default_context(cafile=str(both))
        with (
            socket.create_connection(mitm.address, timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=BANK) as tls,
        ):
            seen = spki_pin(tls.getpeercert(binary_form=True))
        mitm.wait(2)
    assert response.status_code == 200 and mitm.stolen[0]["user"] == "ada"
    assert seen != spki_pin(world["leaf"].cert)
    assert seen == spki_pin(forged.cert)
    assert mitm.interceptions[-1].outcome.startswith("handshake accepted, then the victim hung up")


def test_spki_pin_is_rfc7469_and_survives_reissuing_the_same_key(world):
    leaf = world["leaf"]
    der = leaf.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert (
        spki_pin(leaf.cert)
        == expected
        == spki_pin(leaf.cert.public_bytes(serialization.Encoding.DER))
    )
    renewed = pki.CA("Another CA").issue(BANK, key=leaf.key)
    assert spki_pin(renewed.cert) == expected
    if shutil.which("openssl"):
        out = subprocess.run(
            "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der"
            " | openssl dgst -sha256 -binary | base64",
            shell=True,  # noqa: S602 - a fixed pipeline, the one RFC 7469 readers use
            input=leaf.cert_pem,
            capture_output=True,
            check=True,
        )
        assert out.stdout.decode().strip() == expected


def test_stop_joins_threads_and_frees_the_port(world):
    mitm = Interceptor(world["bank"].address, pki.self_signed(BANK)).start()
    port = mitm.port
    mitm.stop()
    mitm.stop()  # idempotent
    assert all(not t.is_alive() for t in mitm._threads)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again


def test_parse_http_stops_at_an_incomplete_body():
    data = b"POST /login HTTP/1.1\r\nContent-Length: 9\r\n\r\nuser=ada"
    assert parse_http(data) == []
    (message,) = parse_http(data + b"x")
    assert message.body == b"user=adax"


# --------------------------------------------------------------------------- issue 13 (L5)
# Fenced in code: loopback only, lab upstreams only, bounded threads and records.


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.0.2.1", ""])
def test_the_interceptor_listens_on_loopback_unless_told_otherwise(world, bind):
    attacker = pki.self_signed(BANK)
    with pytest.raises(UsageError, match="allow_network=True"):
        Interceptor(world["bank"].address, attacker, bind=bind)
    Interceptor(world["bank"].address, attacker, bind=bind, allow_network=True)  # not started


@pytest.mark.parametrize(
    "upstream", [("192.0.2.1", 443), ("www.example.com", 443), ("10.0.0.1", 8443)]
)
def test_a_real_upstream_needs_live_mode_and_an_explicit_opt_in(world, upstream, monkeypatch):
    attacker = pki.self_signed(BANK)
    with pytest.raises(UsageError, match="allow_remote=True"):
        Interceptor(upstream, attacker)
    monkeypatch.setattr(live, "_override", False)
    with pytest.raises(LiveModeOff):
        Interceptor(upstream, attacker, allow_remote=True)
    monkeypatch.setattr(live, "_override", True)
    with pytest.raises(UsageError):
        Interceptor(upstream, attacker)  # live mode alone is not enough
    Interceptor(upstream, attacker, allow_remote=True)  # both: allowed (not started)


def test_loopback_and_lab_names_are_fine_upstreams(world):
    attacker = pki.self_signed(BANK)
    port = world["bank"].port
    for upstream in [("127.0.0.1", port), ("localhost", port), (BANK, port), ("::1", port)]:
        Interceptor(upstream, attacker)


def test_victims_over_the_cap_are_turned_away_without_a_thread(world):
    """Connections that never shake hands hold a thread each, up to max_victims only."""
    mitm = Interceptor(world["bank"].address, pki.self_signed(BANK))
    mitm.max_victims = 3
    with mitm:
        victims = [socket.create_connection(("127.0.0.1", mitm.port), timeout=5) for _ in range(10)]
        try:
            assert wait_for(lambda: mitm.turned_away == 7, 5), mitm.turned_away
            alive = [t for t in mitm._threads if t.is_alive()]
            assert len(alive) <= 1 + 3  # the accept thread and three victims
            assert len(mitm.interceptions) == 3
            closed = 0
            for v in victims:
                v.settimeout(0.5)
                try:
                    closed += v.recv(1) == b""
                except TimeoutError:
                    pass  # held: waiting for its handshake
            assert closed == 7
        finally:
            for v in victims:
                v.close()
        start = time.monotonic()
    assert time.monotonic() - start < 3  # stop() hung up on the three, did not wait 5 s


def test_the_interceptions_list_is_bounded(world):
    mitm = Interceptor(world["bank"].address, pki.self_signed(BANK))
    mitm.max_interceptions = 2
    with mitm:
        for _ in range(5):
            socket.create_connection(("127.0.0.1", mitm.port), timeout=5).close()
        assert wait_for(lambda: mitm.turned_away == 3, 5), mitm.turned_away
        mitm.wait(2)
    assert len(mitm.interceptions) == 2


def test_recorded_plaintext_is_capped_but_still_forwarded(world):
    bank = world["bank"]
    careless = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    careless.check_hostname = False
    careless.verify_mode = ssl.CERT_NONE  # the victim's mistake, on purpose
    mitm = Interceptor(bank.address, pki.self_signed(BANK), upstream_cafile=world["cafile"])
    mitm.max_recorded = 100
    with mitm:
        conn = http.client.HTTPSConnection(BANK, mitm.port, context=careless, timeout=5)
        body = "user=ada&password=" + "x" * 5000
        conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        page = conn.getresponse()
        assert page.status == 403  # the bank got the whole form and answered
        page.read()
        conn.close()
        (record,) = mitm.wait()
    assert len(record.data("c2s")) == 100 and len(record.data("s2c")) <= 100
    assert record.unrecorded >= 5000


def test_two_hundred_idle_victims_cost_at_most_max_victims_threads(world):
    """Idle clients that never shake hands: threads stay under the cap, then go back."""
    mitm = Interceptor(world["bank"].address, pki.self_signed(BANK))
    with mitm:
        victims = [
            socket.create_connection(("127.0.0.1", mitm.port), timeout=5) for _ in range(200)
        ]
        try:
            assert wait_for(lambda: mitm.turned_away + len(mitm.interceptions) == 200, 10)
            assert len([t for t in mitm._threads if t.is_alive()]) <= 1 + mitm.max_victims
            # HANDSHAKE_TIMEOUT (5 s) frees them; slack for a loaded machine.
            assert wait_for(lambda: sum(t.is_alive() for t in mitm._threads) == 1, 15)
            assert all(i.refused for i in mitm.interceptions)
        finally:
            for v in victims:
                v.close()


def test_a_busy_port_is_one_sentence(world):
    with Interceptor(world["bank"].address, pki.self_signed(BANK)) as first:
        with pytest.raises(UsageError, match="cannot listen on"):
            Interceptor(world["bank"].address, pki.self_signed(BANK), port=first.port).start()


# --------------------------------------------------------------------------- issue 13 (N1, L8)


@pytest.mark.parametrize("host", [BANK, BANK + "\u3002", "BANK\uff0elab.localhost"])
def test_a_lab_upstream_with_no_lab_running_is_refused_before_any_lookup(no_lab_spy, host):
    from helpers.errors import LabError

    attacker = pki.self_signed(BANK)
    with pytest.raises(LabError, match="no lab is running") as info:
        Interceptor((host, 8443), attacker)
    assert "\n" not in str(info.value) and info.value.hint
    assert no_lab_spy == []


def _panicking(*args, **kwargs):
    """What cryptography's Rust code raises when it panics (see tests/test_pki.py)."""
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    raise panic("assertion failed: simulated")


def test_a_panic_on_the_upstream_certificate_is_recorded_and_hangs_up(world, monkeypatch, capfd):
    """The real server's certificate reaches cryptography's Rust parser. A panic there
    (a BaseException) used to escape the victim's thread: a traceback on stderr, a record
    never finished and the connection to the bank left open."""
    from cryptography import x509

    bank = world["bank"]
    careless = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    careless.check_hostname = False
    careless.verify_mode = ssl.CERT_NONE
    monkeypatch.setattr(x509, "load_der_x509_certificate", _panicking)
    capfd.readouterr()
    with Interceptor(bank.address, pki.self_signed(BANK), upstream_cafile=world["cafile"]) as mitm:
        with socket.create_connection(("127.0.0.1", mitm.port), timeout=5) as raw:
            with careless.wrap_socket(raw, server_hostname=BANK) as victim:
                victim.sendall(b"GET / HTTP/1.1\r\nHost: bank\r\n\r\n")
                try:  # the interceptor hangs up on the victim: a FIN, or a reset when
                    got = victim.recv(100)  # the request it never read was still queued
                except ConnectionResetError:
                    got = b""
                assert got == b""
        (record,) = mitm.wait(timeout=5)
        assert record.accepted and record.upstream_cert is None
        assert "panicked" in (record.upstream_error or ""), record.upstream_error
        assert "\n" not in record.upstream_error
        # ... and the connection to the bank was closed too: the bank serves nobody.
        assert wait_for(lambda: not bank._server._open, 5), bank._server._open
    assert capfd.readouterr().err == ""


def test_spki_pin_of_bytes_cryptography_panics_on_is_one_sentence(monkeypatch):
    from cryptography import x509

    from helpers.errors import PEMError

    monkeypatch.setattr(x509, "load_der_x509_certificate", _panicking)
    with pytest.raises(PEMError, match="panicked") as info:
        spki_pin(b"\x30\x03\x02\x01\x00")
    assert "\n" not in str(info.value) and info.value.hint
