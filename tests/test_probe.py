"""The tiny scanner and grader of notebook 08, against the lab and a local server."""

from __future__ import annotations

import ipaddress
import socket
import ssl

import pytest

from helpers import names, pki, probe
from helpers.errors import ConnectionProblem, LabError, PEMError
from helpers.lab import get_lab
from helpers.servers import LoginServer


@pytest.fixture(scope="module")
def scans():
    get_lab()
    wanted = [
        "valid",
        "tls-1.0-only",
        "dh-1024",
        "weak-key",
        "self-signed",
        "wrong-host",
        "sha1",
        "client-cert-required",
    ]
    return {name: probe.scan(name) for name in wanted}


def test_versions_are_probed_one_at_a_time(scans):
    assert scans["valid"].accepted_versions == ["TLSv1.2", "TLSv1.3"]
    assert scans["tls-1.0-only"].accepted_versions == ["TLSv1"]
    assert scans["dh-1024"].accepted_versions == ["TLSv1.2"]
    assert "PROTOCOL" in scans["tls-1.0-only"].version_errors["TLSv1.2"]
    assert scans["valid"].tls13_suite and scans["valid"].tls13_suite.startswith("TLS_")


def test_suites_and_key_exchange_are_read_from_real_handshakes(scans):
    valid = scans["valid"]
    assert valid.suites and all(s.kex == "ECDHE" and s.auth == "ECDSA" for s in valid.suites)
    assert {k.kind for k in valid.key_exchanges} == {"ECDHE", "TLS 1.3 (EC)DHE"}
    dh = scans["dh-1024"]
    assert {s.kex for s in dh.suites} == {"DHE"}
    (kex,) = dh.key_exchanges
    assert kex.kind == "DHE" and kex.bits == 1024  # from ServerKeyExchange's dh_p
    legacy = scans["tls-1.0-only"]
    assert legacy.suites_version == "TLSv1" and all(not s.aead for s in legacy.suites)
    assert legacy.key_exchanges[0].version == "TLSv1"  # decoded with the TLS 1.0 layout
    assert scans["weak-key"].certificate.key_bits == 1024
    assert scans["sha1"].certificate.signature_hash == "sha1"


@pytest.mark.parametrize(
    ("name", "letter", "rules"),
    [
        ("valid", "A", set()),
        ("tls-1.0-only", "C", {"no-tls12", "tls-1.0-1.1"}),
        ("dh-1024", "B", {"weak-dh"}),
        ("weak-key", "B", {"weak-certificate-key"}),  # SSL Labs: RSA 1024-2047 capped at B
        ("self-signed", "T", {"not-trusted"}),
        ("wrong-host", "M", {"name-mismatch"}),
        ("sha1", "F", {"sha1-signature"}),
    ],
)
def test_lab_servers_earn_their_grades(scans, name, letter, rules):
    g = probe.grade(scans[name])
    assert g.letter == letter
    assert {r.id for r, _ in g.applied} == rules
    assert 0 <= g.score <= 100 and g.numeric_letter == probe.letter_for(g.score)
    assert f">{letter}<" in g._repr_html_()


def test_tls13_group_is_what_this_openssl_negotiates_and_rated_by_its_classical_part(scans):
    """OpenSSL >= 3.5 sends X25519MLKEM768 first and the lab (same OpenSSL) picks it."""
    (kex,) = [k for k in scans["valid"].key_exchanges if k.kind == "TLS 1.3 (EC)DHE"]
    if ssl.OPENSSL_VERSION_INFO >= (3, 5):
        assert kex.group == "X25519MLKEM768" and kex.post_quantum == "ML-KEM-768"
        if kex.source == "wire":
            assert len(kex.public) == 1120  # 32-byte x25519 share + 1088-byte ML-KEM ciphertext
    else:
        assert kex.group == "x25519" and kex.post_quantum is None
        assert len(kex.public) == 32
    assert (kex.bits, kex.rsa_bits) == (255, 3072)  # x25519 ≈ RSA-3072, hybrid or not
    g = probe.grade(scans["valid"])
    assert g.key_exchange == 90 and "≈ RSA 3072" in g.explain["key_exchange"]


def test_hybrid_and_post_quantum_groups_have_a_strength():
    from helpers.probe.keys import _group_strength, _post_quantum_part

    assert _group_strength("X25519MLKEM768") == _group_strength("x25519") == 3072
    assert _group_strength("SecP384r1MLKEM1024") == _group_strength("secp384r1") == 7680
    assert _group_strength("MLKEM1024") == 15360  # FIPS 203 category 5 ≈ AES-256
    assert _post_quantum_part("SecP256r1MLKEM768") == "ML-KEM-768"
    assert _post_quantum_part("x25519") is None and _group_strength("no-such-group") == 0


@pytest.mark.skipif(
    not hasattr(ssl.SSLSocket, "group"), reason="SSLSocket.group() exists from Python 3.15 on"
)
def test_python_315_names_the_group_itself(scans):
    valid = scans["valid"]
    (kex,) = [k for k in valid.key_exchanges if k.kind == "TLS 1.3 (EC)DHE"]
    assert kex.source == "SSLSocket.group()" and valid.tls13_group == kex.group
    (wire,) = [k for k in probe.server_key_shares("valid", 1)]
    assert wire.group.lower() == kex.group.lower()  # the wire agrees with Python


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_key_shares_are_fresh_per_handshake(version):
    first, second = probe.server_key_shares("valid", 2, version=version)
    assert first.group == second.group and first.public and second.public
    assert first.public != second.public  # ephemeral: a new key pair per handshake


def test_grade_arithmetic_follows_the_tables(scans):
    g = probe.grade(scans["tls-1.0-only"])
    assert (g.protocol, g.key_exchange, g.cipher) == (90, 90, 90)
    assert g.score == pytest.approx(0.3 * 90 + 0.3 * 90 + 0.4 * 90)
    assert (g.numeric_letter, g.capped_letter, g.caps) == ("A", "C", ["C", "B"])
    assert probe.letter_for(80) == "A" and probe.letter_for(79.9) == "B"
    assert probe.letter_for(0) == "F"
    assert len(probe.rules_table()) == len(probe.RULES)


def test_hsts_parsing_follows_rfc_6797():
    h = probe.parse_hsts('max-age="31536000"; includeSubDomains; preload')
    assert (h.max_age, h.include_subdomains, h.preload) == (31536000, True, True)
    assert probe.parse_hsts("includeSubDomains") is None  # max-age is required
    assert probe.parse_hsts("max-age=1; max-age=2") is None  # directives appear once
    assert probe.parse_hsts(None) is None


def test_hsts_earns_a_plus_and_static_rsa_is_capped(tmp_path):
    ca = pki.CA("Probe Test CA")
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.cert_pem)
    modern = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue("bank.lab.localhost").configure_server(modern)
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    legacy.set_ciphers("AES128-GCM-SHA256")  # static RSA key transport only
    ca.issue("bank.lab.localhost", key_type="rsa").configure_server(legacy)
    hsts = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
    with (
        names.resolving({"bank.lab.localhost": "127.0.0.1"}),
        LoginServer(tls=modern, headers=hsts) as good,
        LoginServer(tls=legacy) as old,
    ):
        a_plus = probe.grade(
            probe.scan(f"https://bank.lab.localhost:{good.port}/", cafile=str(cafile))
        )
        capped = probe.scan(
            ("127.0.0.1", old.port), server_hostname="bank.lab.localhost", cafile=str(cafile)
        )
    assert a_plus.letter == "A+"
    assert not capped.forward_secrecy and [s.kex for s in capped.suites] == ["RSA"]
    assert probe.grade(capped).letter == "B"


def test_a_port_without_tls_cannot_be_graded():
    with LoginServer() as plain:
        result = probe.scan(("127.0.0.1", plain.port))
    assert result.accepted_versions == [] and result.notes
    with pytest.raises(ConnectionProblem):
        probe.grade(result)


def test_grade_chart_draws_one_bar_per_server(scans):
    from helpers import plots

    grades = [probe.grade(scans[name]) for name in ("valid", "tls-1.0-only", "self-signed")]
    fig = plots.grade_chart(grades)
    ax = fig.axes[0]
    assert len(ax.patches) == 3 * len(grades)  # three stacked categories per server
    badges = [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("grade:")]
    assert badges == ["A", "C", "T"]
    assert sum(p.get_width() for p in ax.patches[:3]) == pytest.approx(grades[0].score)


def _s_client_tls12(address: tuple[str, int], server_name: str) -> tuple[str, str, str]:
    """``openssl s_client -tls1_2`` with no client certificate: (protocol, cipher, output)."""
    import re
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command on this machine: nothing to compare the probe with")
    run = subprocess.run(
        [openssl, "s_client", "-tls1_2", "-connect", f"{address[0]}:{address[1]}"]
        + ["-servername", server_name],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = run.stdout + run.stderr
    protocol = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    cipher = re.search(r"^\s*Cipher\s*:\s*(\S+)", out, re.M)
    assert protocol and cipher, out
    return protocol.group(1), cipher.group(1), out


def test_client_certificate_required_is_accepted_with_a_note(scans):
    """Issue 12, item 5(a): the TLS 1.2 refusal comes after version and suite were agreed.

    ``openssl s_client -tls1_2`` without a certificate sees the same thing: it prints the
    agreed protocol and cipher, the CertificateRequest ("Client Certificate Types") and
    then the server's fatal alert.
    """
    from helpers.handshake import CIPHER_SUITES

    lab = get_lab()
    result = scans["client-cert-required"]
    assert result.accepted_versions == ["TLSv1.2", "TLSv1.3"]
    assert result.client_certificate_required
    assert any(n.startswith("Client certificate required") for n in result.notes)
    assert "TLSv1.2" not in result.version_errors
    assert result.suites and result.suites_version == "TLSv1.2"
    assert {s.kex for s in result.suites} == {"ECDHE"}
    # the lab's other servers use the same OpenSSL and certificate type: same suites
    assert [s.name for s in result.suites] == [s.name for s in scans["valid"].suites]
    assert not scans["valid"].client_certificate_required
    assert result.certificate is not None and result.certificate.key_bits

    protocol, cipher, out = _s_client_tls12(
        lab.address("client-cert-required"), lab.host("client-cert-required")
    )
    assert protocol == "TLSv1.2"
    assert cipher in [s.name for s in result.suites]  # OpenSSL's name of an accepted suite
    assert "Client Certificate Types" in out  # s_client saw the CertificateRequest
    assert "alert handshake failure" in out  # and then the refusal (RFC 5246 §7.4.6)
    # the probe names what s_client names, in the registry's words
    by_name = {s.name: s.iana for s in result.suites}
    assert by_name[cipher] in CIPHER_SUITES.values()


# ------------------------------------------------------------------------- issue 13: N1, L8




@pytest.mark.parametrize("host", ["valid.lab.localhost", "valid.lab.localhost\u3002"])
def test_a_lab_name_with_no_lab_running_never_reaches_the_resolver(no_lab_spy, host):
    calls = {
        "scan URL": lambda: probe.scan(f"https://{host}:8443/", timeout=1),
        "scan tuple": lambda: probe.scan((host, 8443), timeout=1),
        "server_key_shares": lambda: probe.server_key_shares((host, 8443), 1, timeout=1),
    }
    for label, call in calls.items():
        with pytest.raises(LabError, match="no lab is running") as info:
            call()
        assert "\n" not in str(info.value) and "get_lab()" in info.value.hint, label
    assert no_lab_spy == []


def test_a_unicode_dot_spelling_is_sent_and_checked_as_the_resolver_sees_it(tmp_path):
    """RFC 6066 §3: SNI carries no trailing dot; 'bank.lab.localhost。' is bank.lab.localhost."""
    ca = pki.CA("Probe SNI CA")
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.cert_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue("bank.lab.localhost").configure_server(server)
    with names.resolving({"bank.lab.localhost": "127.0.0.1"}), LoginServer(tls=server) as site:
        result = probe.scan(
            f"https://BANK.lab.localhost\u3002:{site.port}/", cafile=str(cafile), http=False
        )
    assert result.server_hostname == "bank.lab.localhost"
    assert result.trust.ok, result.trust


def test_unicode_dot_spellings_of_local_names_are_local():
    from helpers.probe.scanner import _is_local

    for host in ("valid.lab.localhost\u3002", "LOCALHOST\uff0e", "valid\uff61lab.localhost", "::1"):
        assert _is_local(host), host
    for host in ("example.com\u3002", "localhost.example.com", "127.0.0.1.nip.io"):
        assert not _is_local(host), host


def _panicking(*args, **kwargs):
    """What cryptography's Rust code raises when it panics (see tests/test_pki.py)."""
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    raise panic("assertion failed: simulated")


def test_a_certificate_cryptography_cannot_read_is_one_sentence(monkeypatch):
    """A Rust panic, a ValueError or an unknown key type: one PEMError, never a traceback."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.CA("Probe Panic CA").issue("127.0.0.1").configure_server(server)

    def refused(*args, **kwargs):
        raise ValueError("error parsing asn1 value")

    class Exotic:  # e.g. a GOST certificate: it loads, but its key type is unknown
        def public_key(self):
            raise UnsupportedAlgorithm("Unknown key type: 1.2.643.7.1.1.1.1")

    loaders = ((_panicking, "panicked"), (refused, "asn1"), (lambda der: Exotic(), "Unknown key"))
    with LoginServer(tls=server) as site:
        for loader, words in loaders:
            monkeypatch.setattr(x509, "load_der_x509_certificate", loader)
            with pytest.raises(PEMError, match=words) as info:
                probe.scan(("127.0.0.1", site.port), http=False, workers=4)
            assert "could not be parsed" in str(info.value) and info.value.hint
            assert "\n" not in str(info.value)


# ------------------------------------------------------------------------- issue 13: L5

PUBLIC = "shop.example"  # a real-looking host name (RFC 2606 reserves .example)


@pytest.fixture
def public_name_spy(monkeypatch):
    """A resolver that answers PUBLIC with 127.0.0.1 and records every name it is asked.

    Stands in for DNS (on both sides of helpers.names' wrapper, should a lab be
    running), so a "real host" can be probed over loopback without leaving the machine.
    """
    real = names._real_getaddrinfo if names.installed() else socket.getaddrinfo
    asked = []

    def spy(host, port, *args, **kwargs):
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            asked.append(text)
        return real("127.0.0.1" if text == PUBLIC else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    monkeypatch.setattr(names, "_real_getaddrinfo", spy)
    return asked


@pytest.fixture
def public_site():
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.CA("Probe Public CA").issue(PUBLIC).configure_server(server)
    with LoginServer(tls=server) as site:
        yield site


def test_a_real_host_with_live_mode_off_is_live_mode_off_before_any_lookup(
    public_name_spy, public_site, monkeypatch
):
    from helpers import live
    from helpers.errors import LiveModeOff

    monkeypatch.setattr(live, "_override", False)
    for call in (
        lambda: probe.scan((PUBLIC, public_site.port), http=False),
        lambda: probe.server_key_shares((PUBLIC, public_site.port), 1),
    ):
        with pytest.raises(LiveModeOff):
            call()
    assert public_name_spy == []


def test_with_live_mode_on_a_real_host_is_probed_through_the_fenced_relay(
    public_name_spy, public_site, monkeypatch
):
    """The target is the caller's choice: the probe's recording Relay forwards to it
    once live mode is on, instead of refusing it as "neither loopback nor a lab name"."""
    from helpers import live

    monkeypatch.setattr(live, "_override", True)
    target = (PUBLIC, public_site.port)
    first, second = probe.server_key_shares(target, 2)
    assert first.public and second.public and first.public != second.public
    result = probe.scan(target, http=False, workers=4)
    assert result.key_exchanges and all(k.version for k in result.key_exchanges)
    assert set(public_name_spy) == {PUBLIC}
