"""helpers.pki: certificates checked by real TLS handshakes on loopback, and by openssl."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers import pki
from helpers.errors import (
    CourseError,
    KeyMismatchError,
    KeyPasswordError,
    PEMError,
    PKIError,
    UsageError,
)
from helpers.pki import (
    CA,
    Leaf,
    ensure_key_matches,
    load_certificate,
    load_certificates,
    load_pkcs12,
    load_private_key,
    make_csr,
    new_private_key,
    self_signed,
    write_private_key,
)

HOST = "valid.lab.localhost"
UTC = dt.timezone.utc  # noqa: UP017 (3.10 compatible)

# OpenSSL X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code reports them.
X509_CERT_NOT_YET_VALID = 9
X509_CERT_HAS_EXPIRED = 10
X509_DEPTH_ZERO_SELF_SIGNED = 18
X509_SELF_SIGNED_IN_CHAIN = 19
X509_UNABLE_TO_GET_ISSUER_LOCALLY = 20
X509_CERT_REVOKED = 23
X509_INVALID_CA = 24
X509_PATH_LENGTH_EXCEEDED = 25
X509_HOSTNAME_MISMATCH = 62
X509_IP_ADDRESS_MISMATCH = 64
X509_INVALID_CA_NON_STRICT = 79  # OpenSSL 3 reports "invalid CA certificate" as 79


# --------------------------------------------------------------------------- a tiny TLS server


class TLSServer:
    """Accepts TLS connections on 127.0.0.1:<ephemeral> in a thread; answers b"ok".

    Handshake failures on the server side are kept in ``errors``; client certificates
    seen are kept in ``peers``. ``stop()`` joins the thread and closes the socket.
    """

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.errors: list[Exception] = []
        self.peers: list[dict | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-tls-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    with self.ctx.wrap_socket(conn, server_side=True) as tls:
                        self.peers.append(tls.getpeercert())
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError) as exc:
                    self.errors.append(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        assert not self._thread.is_alive()


@pytest.fixture
def serve() -> Iterator[Callable[..., TLSServer]]:
    """``serve(leaf_or_ctx, client_ca=None)`` starts a server; all are stopped at teardown."""
    servers: list[TLSServer] = []

    def start(
        leaf: Leaf | ssl.SSLContext,
        client_ca: CA | None = None,
        tmp: Path | None = None,
    ) -> TLSServer:
        if isinstance(leaf, ssl.SSLContext):
            ctx = leaf
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_server(ctx)
        if client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS: no client certificate, no connection
            client_ca.configure_trust(ctx)
        server = TLSServer(ctx)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def no_server_threads_left() -> Iterator[None]:
    yield
    leftover = [t for t in threading.enumerate() if t.name == "test-tls-server"]
    assert leftover == [], "a TLS server thread outlived its test"


def client_context(cafile: Path | None = None, *, strict: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if strict:
        # What Python 3.13 turns on by default: RFC 5280 profile checks in OpenSSL.
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def talk(server: TLSServer, ctx: ssl.SSLContext, host: str = HOST) -> str:
    """Connect, complete the handshake, read the server's b"ok"; return the TLS version."""
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.recv(2) == b"ok"
        return tls.version() or ""


def verify_error(server: TLSServer, ctx: ssl.SSLContext, host: str = HOST) -> int:
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        talk(server, ctx, host)
    return info.value.verify_code


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def root() -> CA:
    return CA()


@pytest.fixture(scope="module")
def inter(root: CA) -> CA:
    return root.create_intermediate()


@pytest.fixture(scope="module")
def leaf(inter: CA) -> Leaf:
    return inter.issue(HOST, "127.0.0.1", "*.wild.lab.localhost")


@pytest.fixture
def root_file(root: CA, tmp_path: Path) -> Path:
    path = tmp_path / "root.pem"
    path.write_bytes(root.cert_pem)
    return path


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


# --------------------------------------------------------------------------- handshakes


def test_leaf_with_intermediate_chain_from_written_files(serve, leaf, inter, root_file, tmp_path):
    files = leaf.write(tmp_path / "srv")
    assert load_certificates(files.chain) == [leaf.cert, inter.cert]  # never the root
    assert load_certificate(files.cert) == leaf.cert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.chain, files.key)
    server = serve(ctx)
    assert talk(server, client_context(root_file)) in ("TLSv1.3", "TLSv1.2")
    assert server.errors == []


@pytest.mark.parametrize(
    ("key_type", "key_size"), [("ec", None), ("ec", 384), ("rsa", None), ("ed25519", None)]
)
def test_strict_verification_accepts_every_key_type(
    serve, root, inter, root_file, key_type, key_size
):
    leaf = inter.issue(HOST, "127.0.0.1", key_type=key_type, key_size=key_size)
    server = serve(leaf)
    assert talk(server, client_context(root_file, strict=True))
    assert talk(server, client_context(root_file, strict=True), host="127.0.0.1")


def test_strict_verification_with_rsa_and_p384_cas(serve, tmp_path):
    rsa_root = CA("RSA Root", key_type="rsa")
    p384_inter = rsa_root.create_intermediate("P-384 Intermediate", key_size=384)
    assert isinstance(p384_inter.cert.signature_hash_algorithm, hashes.SHA256)  # RSA signed
    leaf = p384_inter.issue(HOST)
    assert isinstance(leaf.cert.signature_hash_algorithm, hashes.SHA384)  # P-384 signed
    server = serve(leaf)
    ctx = client_context(strict=True)
    rsa_root.configure_trust(ctx)
    assert talk(server, ctx)


def test_wrong_ca_is_refused(serve, leaf, tmp_path):
    stranger = CA()  # same name as the course root, different key
    path = tmp_path / "stranger.pem"
    path.write_bytes(stranger.cert_pem)
    server = serve(leaf)
    code = verify_error(server, client_context(path))
    assert code in (X509_UNABLE_TO_GET_ISSUER_LOCALLY, X509_SELF_SIGNED_IN_CHAIN)


def test_expired_leaf_is_refused(serve, inter, root_file):
    expired = inter.issue(HOST, not_after=dt.timedelta(days=-1))
    assert expired.cert.not_valid_after_utc < dt.datetime.now(UTC)
    assert expired.cert.not_valid_before_utc < expired.cert.not_valid_after_utc
    assert verify_error(serve(expired), client_context(root_file)) == X509_CERT_HAS_EXPIRED


def test_not_yet_valid_leaf_is_refused(serve, inter, root_file):
    future = inter.issue(HOST, not_before=dt.timedelta(days=2))
    assert verify_error(serve(future), client_context(root_file)) == X509_CERT_NOT_YET_VALID


def test_ip_san_and_hostname_mismatch(serve, leaf, root_file):
    server = serve(leaf)
    assert talk(server, client_context(root_file, strict=True), host="127.0.0.1")
    assert verify_error(server, client_context(root_file), host="127.0.0.2") == (
        X509_IP_ADDRESS_MISMATCH
    )
    assert verify_error(server, client_context(root_file), host="other.lab.localhost") == (
        X509_HOSTNAME_MISMATCH
    )


def test_wildcard_matches_one_label_only(serve, leaf, root_file):
    server = serve(leaf)
    assert talk(server, client_context(root_file), host="a.wild.lab.localhost")
    for host in ("wild.lab.localhost", "a.b.wild.lab.localhost"):
        assert verify_error(server, client_context(root_file), host=host) == (
            X509_HOSTNAME_MISMATCH
        )


def test_cn_only_certificate_needs_the_common_name_fallback(serve, root, root_file):
    cn_only = root.issue("legacy.lab.localhost", san=False)
    with pytest.raises(x509.ExtensionNotFound):
        ext(cn_only.cert, x509.SubjectAlternativeName)
    assert cn_only.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "legacy.lab.localhost"
    )
    server = serve(cn_only)
    python_default = client_context(root_file)
    assert python_default.hostname_checks_common_name  # Python still falls back to the CN
    assert talk(server, python_default, host="legacy.lab.localhost")
    browser_like = client_context(root_file)
    browser_like.hostname_checks_common_name = False  # RFC 9525: ignore the CN
    assert verify_error(server, browser_like, host="legacy.lab.localhost") == (
        X509_HOSTNAME_MISMATCH
    )


def test_mutual_tls_with_and_without_client_certificate(serve, leaf, root, inter, root_file):
    server = serve(leaf, client_ca=root)
    client = inter.issue("alice", usages=("client",))
    assert ext(client.cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    with_cert = client_context(root_file, strict=True)
    client.configure_client(with_cert)  # load_cert_chain, on the client's side
    assert talk(server, with_cert)
    assert dict(x[0] for x in server.peers[-1]["subject"])["commonName"] == "alice"
    also = client_context(root_file)
    client.configure_server(also)  # the same call under its server-side name
    assert talk(server, also)

    without = client_context(root_file)
    # TLS 1.3: the client finishes first; the server's refusal arrives on the first read.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        talk(server, without)
    deadline = time.monotonic() + 5
    while not server.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any("certificate" in str(e).lower() for e in server.errors)


def test_server_certificate_cannot_log_in_as_a_client(serve, leaf, root, root_file):
    server = serve(leaf, client_ca=root)
    ctx = client_context(root_file)
    root.issue("mallory", usages=("server",)).configure_server(ctx)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        talk(server, ctx)


def test_self_signed_is_trusted_only_when_pinned(serve):
    ss = self_signed("self.lab.localhost")
    assert ss.issuer is ss and ss.chain == [ss.cert]
    assert ss.cert.issuer == ss.cert.subject
    ss.cert.verify_directly_issued_by(ss.cert)
    server = serve(ss)
    pinned = client_context(strict=True)
    ss.configure_trust(pinned)
    assert talk(server, pinned, host="self.lab.localhost")
    code = verify_error(server, client_context(), host="self.lab.localhost")
    assert code == X509_DEPTH_ZERO_SELF_SIGNED


def test_a_leaf_cannot_act_as_a_ca(serve, leaf, inter, root_file):
    impostor = CA.from_parts(leaf.cert, leaf.key, parent=inter)  # a leaf misused as issuer
    victim = impostor.issue("victim.lab.localhost")
    assert victim.chain == [victim.cert, leaf.cert, inter.cert]
    code = verify_error(serve(victim), client_context(root_file), host="victim.lab.localhost")
    assert code in (X509_INVALID_CA, X509_INVALID_CA_NON_STRICT)


def test_is_ca_leaf_claims_ca_true(inter):
    bad = inter.issue("bad.lab.localhost", is_ca=True)
    bc = ext(bad.cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    assert ext(bad.cert, x509.KeyUsage).value.key_cert_sign is False


def test_path_length_zero_stops_a_second_intermediate(serve, root, inter, root_file):
    assert ext(inter.cert, x509.BasicConstraints).value.path_length == 0
    sub = inter.create_intermediate("Sub CA")  # allowed to build, refused by verifiers
    leaf = sub.issue(HOST)
    assert leaf.chain == [leaf.cert, sub.cert, inter.cert]
    assert verify_error(serve(leaf), client_context(root_file)) == X509_PATH_LENGTH_EXCEEDED


def test_crl_lists_revoked_serial_and_openssl_enforces_it(serve, root, tmp_path):
    ca = CA("CRL Test CA")
    revoked = ca.issue("revoked.lab.localhost")
    good = ca.issue("good.lab.localhost")
    ca.revoke(revoked, reason="key_compromise")
    ca.revoke(12345)  # a bare serial
    crl = ca.crl(days=3)
    assert crl.is_signature_valid(ca.cert.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(revoked.cert.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.get_revoked_certificate_by_serial_number(12345) is not None
    assert crl.get_revoked_certificate_by_serial_number(good.cert.serial_number) is None
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    first = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    second = x509.load_pem_x509_crl(ca.crl_pem())
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > first
    assert crl.next_update_utc - crl.last_update_utc >= dt.timedelta(days=3)

    bundle = tmp_path / "ca+crl.pem"  # cafile= loads certificates *and* CRLs
    bundle.write_bytes(ca.cert_pem + ca.crl_pem())
    ctx = client_context(bundle, strict=True)
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    code = verify_error(serve(revoked), ctx, host="revoked.lab.localhost")
    assert code == X509_CERT_REVOKED
    assert talk(serve(good), ctx, host="good.lab.localhost")


def test_revoking_a_certificate_from_another_ca_is_an_error(root, leaf):
    with pytest.raises(PKIError, match="issued by"):
        root.revoke(leaf)  # issued by the intermediate
    with pytest.raises(PKIError, match="reason"):
        root.revoke(1, reason="because")


def test_csr_path_key_never_leaves_the_server(serve, inter, root_file):
    key = new_private_key()
    csr = make_csr(key, "csr.lab.localhost", "127.0.0.1")
    assert csr.is_signature_valid
    der = csr.public_bytes(serialization.Encoding.DER)  # what travels to the CA
    cert = inter.sign_csr(x509.load_der_x509_csr(der))
    ensure_key_matches(cert, key)
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "csr.lab.localhost"
    ]
    assert ext(cert, x509.BasicConstraints).value.ca is False
    leaf = Leaf.from_parts(cert, key, [inter.cert])
    assert talk(serve(leaf), client_context(root_file, strict=True), host="127.0.0.1")


def test_csr_cannot_ask_for_ca_and_cn_only_csr_gets_a_san(inter):
    key = new_private_key()
    sneaky = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cn.lab.localhost")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert = inter.sign_csr(sneaky, usages=("server", "client"))
    assert ext(cert, x509.BasicConstraints).value.ca is False
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cn.lab.localhost"]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]


# --------------------------------------------------------------------------- structure


def test_extensions_strict_verifiers_need(root, inter, leaf):
    for ca, parent in ((root, root), (inter, root)):
        bc = ext(ca.cert, x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        ku = ext(ca.cert, x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        aki = ext(ca.cert, x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ext(parent.cert, x509.SubjectKeyIdentifier).value.digest
    assert root.cert.issuer == root.cert.subject and root.parent is None
    assert inter.parent is root and inter.chain == [inter.cert, root.cert]
    assert inter.cert.issuer == root.cert.subject
    inter.cert.verify_directly_issued_by(root.cert)
    leaf.cert.verify_directly_issued_by(inter.cert)

    bc = ext(leaf.cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(leaf.cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not ku.value.key_encipherment and not ku.value.key_cert_sign  # EC key
    assert ext(leaf.cert, x509.AuthorityKeyIdentifier).value.key_identifier == (
        ext(inter.cert, x509.SubjectKeyIdentifier).value.digest
    )
    assert list(ext(leaf.cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = ext(leaf.cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == [HOST, "*.wild.lab.localhost"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert leaf.issuer is inter and leaf.chain == [leaf.cert, inter.cert]
    assert leaf.chain_pem == leaf.cert_pem + inter.cert_pem
    assert leaf.names == [HOST, "127.0.0.1", "*.wild.lab.localhost"]


def test_rsa_leaf_may_encipher(root):
    leaf = root.issue("rsa.lab.localhost", key_type="rsa")
    assert isinstance(leaf.key, rsa.RSAPrivateKey) and leaf.key.key_size == 2048
    assert ext(leaf.cert, x509.KeyUsage).value.key_encipherment


def test_key_types_and_sizes():
    assert new_private_key().curve.name == "secp256r1"
    assert new_private_key("ec", 384).curve.name == "secp384r1"
    assert new_private_key("rsa", 1024).key_size == 1024  # on request, for "weak key" lessons
    with pytest.raises(PKIError):
        new_private_key("dsa")
    with pytest.raises(PKIError):
        new_private_key("ec", 255)
    with pytest.raises(PKIError):
        new_private_key("rsa", 512)


def test_signature_hash_choice(root):
    assert isinstance(
        root.issue("h.lab.localhost", signature_hash="sha384").cert.signature_hash_algorithm,
        hashes.SHA384,
    )
    with pytest.raises(PKIError, match="SHA-1"):
        root.issue("h.lab.localhost", signature_hash="sha1")
    with pytest.raises(PKIError):
        root.issue("h.lab.localhost", signature_hash="md5")


def test_ca_loaded_without_parent_still_sends_itself(inter):
    loaded = CA.from_parts(inter.cert, inter.key)  # e.g. from a cache, parent unknown
    child = loaded.issue("child.lab.localhost")
    assert child.chain == [child.cert, inter.cert]


def test_reused_key_and_serial(root):
    key = new_private_key()
    a = root.issue("a.lab.localhost", key=key, serial=4242)
    b = root.issue("b.lab.localhost", key=key)
    assert a.key is key and a.cert.serial_number == 4242
    assert a.cert.public_key() == b.cert.public_key()
    assert a.cert.serial_number != b.cert.serial_number


def test_validity_periods(root):
    start = dt.datetime(2020, 1, 1, 12, 0)  # naive: taken as UTC
    old = root.issue("old.lab.localhost", not_before=start, not_after=start + dt.timedelta(days=1))
    assert old.cert.not_valid_before_utc == start.replace(tzinfo=UTC)
    assert old.cert.not_valid_after_utc == dt.datetime(2020, 1, 2, 12, 0, tzinfo=UTC)
    fresh = root.issue("fresh.lab.localhost")
    now = dt.datetime.now(UTC)
    assert fresh.cert.not_valid_before_utc <= now <= fresh.cert.not_valid_after_utc
    assert fresh.cert.not_valid_after_utc - now > dt.timedelta(days=89)
    with pytest.raises(PKIError, match="not_after"):
        root.issue("x.lab.localhost", not_before=start, not_after=start - dt.timedelta(days=1))


def test_names_idn_and_long_names(serve, root, root_file):
    idn = root.issue("bücher.lab.localhost")
    assert idn.names == ["xn--bcher-kva.lab.localhost"]
    long_name = "a" * 60 + ".lab.localhost"  # longer than the 64-character CN limit
    leaf = root.issue(long_name)
    assert leaf.cert.subject == x509.Name([])
    assert ext(leaf.cert, x509.SubjectAlternativeName).critical  # RFC 5280 §4.2.1.6
    assert talk(serve(leaf), client_context(root_file, strict=True), host=long_name)
    with pytest.raises(PKIError, match="64"):
        root.issue("x.lab.localhost", common_name="c" * 65)
    with pytest.raises(PKIError):
        root.issue()
    with pytest.raises(PKIError, match="usage"):
        root.issue("x.lab.localhost", usages=("sever",))


# --------------------------------------------------------------------------- files & formats


def test_private_keys_are_created_0600(leaf, tmp_path):
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        files = leaf.write(tmp_path / "out")
        target = tmp_path / "existing.key"
        target.write_bytes(b"old")
        target.chmod(0o644)
        written = write_private_key(target, leaf.key)  # replaced, not chmod-ed afterwards
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert load_private_key(written).private_numbers() == leaf.key.private_numbers()
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_encrypted_keys_and_password_errors(leaf, tmp_path):
    pem = leaf.key_pem(password="s3cret")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert load_private_key(pem, password="s3cret").private_numbers() == (
        leaf.key.private_numbers()
    )
    with pytest.raises(KeyPasswordError, match="password"):
        load_private_key(pem, password="wrong")
    with pytest.raises(KeyPasswordError, match="no password"):
        load_private_key(pem)
    with pytest.raises(KeyPasswordError, match="not encrypted"):
        load_private_key(leaf.key_pem(), password="s3cret")
    # The encrypted file works where a server loads it, with the password.
    files = leaf.write(tmp_path, name="enc", password=b"s3cret")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.chain, files.key, password="s3cret")
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(files.chain, files.key, password="wrong")


def test_pkcs12_round_trip(leaf, inter):
    blob = leaf.pkcs12(password="pfx-pass", name="my server")
    again = load_pkcs12(blob, password="pfx-pass")
    assert again.cert == leaf.cert and again.chain == [leaf.cert, inter.cert]
    ensure_key_matches(again.cert, again.key)
    parsed = pkcs12.load_pkcs12(blob, b"pfx-pass")
    assert parsed.cert is not None and parsed.cert.friendly_name == b"my server"
    with pytest.raises(KeyPasswordError):
        load_pkcs12(blob, password="nope")
    assert load_pkcs12(leaf.pkcs12()).cert == leaf.cert  # unencrypted bundle


def test_load_certificate_accepts_pem_der_text_and_paths(leaf, tmp_path):
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    (tmp_path / "c.der").write_bytes(der)
    (tmp_path / "c.pem").write_bytes(leaf.cert_pem)
    for source in (
        leaf.cert_pem,
        leaf.cert_pem.decode(),
        der,
        tmp_path / "c.der",
        str(tmp_path / "c.pem"),
        leaf.chain_pem,
    ):
        assert load_certificate(source) == leaf.cert


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\x30\x03\x02\x01", "DER"),
        (b"<html><body>502 Bad Gateway</body></html>", "HTML"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "damaged"),
    ],
)
def test_malformed_certificates_raise_pem_error(data, words):
    with pytest.raises(PEMError, match=words) as info:
        load_certificate(data)
    assert isinstance(info.value, (CourseError, ValueError))
    assert info.value.hint  # the second sentence: what to try
    assert "\n" not in str(info.value)


def test_pem_error_names_what_was_passed_instead(leaf, tmp_path):
    with pytest.raises(PEMError, match="PRIVATE KEY, not a CERTIFICATE"):
        load_certificate(leaf.key_pem())
    with pytest.raises(PEMError, match="CERTIFICATE, not a PRIVATE KEY"):
        load_private_key(leaf.cert_pem)
    with pytest.raises(PEMError, match="no file"):
        load_certificate(str(tmp_path / "missing.pem"))
    truncated = leaf.cert_pem[: len(leaf.cert_pem) // 2] + b"\n-----END CERTIFICATE-----\n"
    with pytest.raises(PEMError):
        load_certificate(truncated)
    with pytest.raises(PEMError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_key_mismatch(leaf, root):
    other = root.issue("other.lab.localhost")
    ensure_key_matches(leaf.cert, leaf.key)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        ensure_key_matches(leaf.cert, other.key)
    with pytest.raises(KeyMismatchError):
        Leaf.from_parts(leaf.cert, other.key)
    with pytest.raises(KeyMismatchError):
        CA.from_parts(root.cert, other.key)


def test_ca_write_and_key_pem(root, inter, tmp_path):
    files = inter.write(tmp_path, password="pw")
    assert load_certificates(files.chain) == [inter.cert, root.cert]
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    key = load_private_key(files.key, password="pw")
    ensure_key_matches(inter.cert, key)
    assert load_private_key(inter.key_pem()).public_key() == inter.key.public_key()
    reloaded = CA.from_parts(load_certificate(files.cert), key, parent=root)
    child = reloaded.issue("reloaded.lab.localhost")
    child.cert.verify_directly_issued_by(inter.cert)


def test_making_certificates_is_fast():
    # The lab makes ~20 certificates at cold start: EC keys keep that in milliseconds.
    start = time.perf_counter()
    ca = CA().create_intermediate()
    leaves = [ca.issue(f"s{i}.lab.localhost", "127.0.0.1") for i in range(20)]
    elapsed = time.perf_counter() - start
    assert all(isinstance(x.key, ec.EllipticCurvePrivateKey) for x in leaves)
    assert elapsed < 1.0, f"22 certificates took {elapsed:.3f}s"


def test_module_contract():
    assert "notebook 04" in (pki.__doc__ or "")
    for name in (
        "CA Leaf self_signed new_private_key make_csr load_certificate load_private_key "
        "ensure_key_matches write_private_key CertFiles"
    ).split():
        assert hasattr(pki, name), name


# --------------------------------------------------------------------------- openssl agrees


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=20, check=False
    )


@pytest.fixture
def chain_files(root, inter, leaf, tmp_path) -> dict[str, Path]:
    paths = {"root": root.cert_pem, "inter": inter.cert_pem, "leaf": leaf.cert_pem}
    out = {}
    for name, data in paths.items():
        out[name] = tmp_path / f"{name}.pem"
        out[name].write_bytes(data)
    return out


@pytest.mark.tools
def test_openssl_verify_agrees(chain_files, inter, tmp_path):
    f = chain_files
    ok = openssl(
        "verify", "-x509_strict", "-CAfile", f["root"], "-untrusted", f["inter"], f["leaf"]
    )
    assert ok.returncode == 0 and f"{f['leaf']}: OK" in ok.stdout, ok.stderr
    missing = openssl("verify", "-CAfile", f["root"], f["leaf"])  # incomplete chain
    assert (
        missing.returncode != 0 and "unable to get local issuer" in missing.stderr + missing.stdout
    )
    expired = tmp_path / "expired.pem"
    expired.write_bytes(inter.issue(HOST, not_after=dt.timedelta(days=-3)).cert_pem)
    result = openssl("verify", "-CAfile", f["root"], "-untrusted", f["inter"], expired)
    assert result.returncode != 0 and "expired" in result.stderr + result.stdout


@pytest.mark.tools
def test_openssl_reads_the_extensions(chain_files, leaf):
    text = openssl("x509", "-noout", "-text", "-in", chain_files["leaf"]).stdout
    assert "DNS:valid.lab.localhost" in text and "IP Address:127.0.0.1" in text
    assert "DNS:*.wild.lab.localhost" in text
    assert "X509v3 Basic Constraints: critical" in text and "CA:FALSE" in text
    assert "X509v3 Key Usage: critical" in text and "Digital Signature" in text
    assert "TLS Web Server Authentication" in text
    assert "X509v3 Authority Key Identifier" in text and "X509v3 Subject Key Identifier" in text
    assert "ecdsa-with-SHA256" in text and "prime256v1" in text
    fp = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", chain_files["leaf"]).stdout
    assert fp.strip().split("=", 1)[1] == leaf.cert.fingerprint(hashes.SHA256()).hex(":").upper()
    root_text = openssl("x509", "-noout", "-text", "-in", chain_files["root"]).stdout
    assert "CA:TRUE" in root_text and "Certificate Sign, CRL Sign" in root_text


@pytest.mark.tools
def test_openssl_checks_the_crl(tmp_path):
    ca = CA("CRL CA")
    bad = ca.issue("bad.lab.localhost")
    ca.revoke(bad, reason="superseded")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "crl.pem").write_bytes(ca.crl_pem())
    (tmp_path / "bad.pem").write_bytes(bad.cert_pem)
    crl_text = openssl("crl", "-noout", "-text", "-in", tmp_path / "crl.pem").stdout
    assert f"{bad.cert.serial_number:X}" in crl_text.upper() and "Superseded" in crl_text
    result = openssl(
        "verify", "-crl_check", "-CAfile", tmp_path / "ca.pem", "-CRLfile", tmp_path / "crl.pem",
        tmp_path / "bad.pem",
    )  # fmt: skip
    assert result.returncode != 0 and "revoked" in result.stderr + result.stdout


@pytest.mark.tools
def test_openssl_opens_pkcs12_and_encrypted_key(leaf, tmp_path):
    p12 = tmp_path / "leaf.p12"
    p12.write_bytes(leaf.pkcs12(password="pw"))
    out = openssl("pkcs12", "-in", p12, "-passin", "pass:pw", "-nokeys")
    assert out.returncode == 0, out.stderr
    assert load_certificates(out.stdout.encode())[0] == leaf.cert
    key = tmp_path / "k.pem"
    key.write_bytes(leaf.key_pem(password="pw"))
    assert openssl("pkey", "-in", key, "-passin", "pass:pw", "-noout").returncode == 0
    assert openssl("pkey", "-in", key, "-passin", "pass:bad", "-noout").returncode != 0


# --------------------------------------------------------------------------- issue 13: hostile input
# Every loader answers bad input with one CourseError sentence, never a stray ValueError,
# TypeError, OSError or (through cryptography's Rust code) a PanicException.


def _traditional_encrypted_key(iv_hex: str | None = None, cipher: str | None = None) -> bytes:
    """An EC key in the pre-PKCS#8 encrypted form (Proc-Type/DEK-Info headers), password b"pw"."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    head, _, rest = pem.partition(b"DEK-Info: ")
    line, _, tail = rest.partition(b"\n")
    old_cipher, _, old_iv = line.partition(b",")
    new_line = (
        (cipher.encode() if cipher else old_cipher)
        + b","
        + (iv_hex.encode() if iv_hex is not None else old_iv)
    )
    return head + b"DEK-Info: " + new_line + b"\n" + tail


def test_traditional_encrypted_key_still_loads():
    pem = _traditional_encrypted_key()
    assert b"Proc-Type: 4,ENCRYPTED" in pem and b"DEK-Info: AES-256-CBC," in pem
    assert isinstance(load_private_key(pem, "pw"), ec.EllipticCurvePrivateKey)
    with pytest.raises(KeyPasswordError):
        load_private_key(pem, "wrong")


@pytest.mark.parametrize(
    ("cipher", "iv_bytes"),
    [("AES-256-CBC", n) for n in (1, 8, 10, 15, 17, 32)]
    + [("AES-128-CBC", 12), ("DES-EDE3-CBC", 4), ("DES-EDE3-CBC", 16)],
)
def test_dek_info_iv_of_the_wrong_length_is_a_pem_error(monkeypatch, cipher, iv_bytes):
    """cryptography 50.0.2 panics (a BaseException) on an AES IV of 8-15 bytes (audit L8.1)."""
    pem = _traditional_encrypted_key("AB" * iv_bytes, cipher)
    called: list[bytes] = []
    real = serialization.load_pem_private_key

    def spy(data, password, *args, **kwargs):
        called.append(data)
        return real(data, password, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", spy)
    with pytest.raises(PEMError, match="DEK-Info") as info:
        load_private_key(pem, "pw")
    assert f"{iv_bytes}-byte IV for {cipher}" in info.value.what
    assert info.value.hint and "\n" not in str(info.value)
    assert called == [], "the damaged header must be refused before cryptography parses it"


def test_damaged_dek_info_header_is_a_pem_error():
    with pytest.raises(PEMError, match="DEK-Info header is damaged"):
        load_private_key(_traditional_encrypted_key("not-hex!"), "pw")


def test_a_rust_panic_becomes_one_sentence(monkeypatch):
    """The defensive net: whatever panics inside cryptography comes out as a PEMError.

    First the real thing (cryptography 50.0.2 panics on this input when nothing checks
    it first); then a panic from any other input, with the pre-check out of the way.
    """
    from helpers.pki import loading, panics

    bad = _traditional_encrypted_key("AB" * 10)
    try:
        serialization.load_pem_private_key(bad, b"pw")
    except ValueError:
        real_panic = None  # a cryptography that no longer panics here: nothing to catch
    except BaseException as exc:  # noqa: BLE001 - the panic is what this test is about
        real_panic = exc
    if real_panic is not None:
        assert panics.is_rust_panic(real_panic), type(real_panic)
        assert not isinstance(real_panic, Exception)
    assert not panics.is_rust_panic(KeyboardInterrupt())
    assert not panics.is_rust_panic(ValueError("x"))

    fake = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})

    def panicking(*args, **kwargs):
        raise real_panic if real_panic is not None else fake("assertion failed: iv_len <= iv.len()")

    monkeypatch.setattr(loading, "_check_dek_info", lambda raw: None)
    monkeypatch.setattr(serialization, "load_pem_private_key", panicking)
    with pytest.raises(PEMError, match="panicked") as info:
        load_private_key(bad, "pw")
    assert "\n" not in str(info.value) and info.value.hint
    monkeypatch.setattr(x509, "load_der_x509_certificate", panicking)
    with pytest.raises(PEMError, match="panicked"):
        load_certificate(b"\x30\x03\x02\x01\x00")
    # Anything else that derives from BaseException is not ours to swallow.
    monkeypatch.setattr(
        x509, "load_der_x509_certificate", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        load_certificate(b"\x30\x03\x02\x01\x00")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("abc\x00def", "NUL"),
        ("MIIBzTCCAXOgAwIBAgIUTSmV\nrhwhAAAA\n", "line breaks"),  # base64 that lost its header
        ("MIIB...-----END CERTIFICATE-----", "'-----'"),
        ("A" * 5000, "5000 characters"),
    ],
)
def test_str_that_cannot_be_a_path_is_refused_not_opened(data, words):
    for loader in (load_certificate, load_private_key, load_certificates):
        with pytest.raises(PEMError, match=words) as info:
            loader(data)
        assert "neither PEM text" in info.value.what and info.value.hint


def test_over_long_file_name_and_odd_inputs(tmp_path):
    with pytest.raises(PEMError, match="longer than this system allows"):
        load_certificate("x" * 300)  # one path component over NAME_MAX (255)
    with pytest.raises(PEMError, match="NUL"):
        load_certificate(tmp_path / "a\x00b.pem")
    with pytest.raises(UsageError, match="not int"):
        load_certificate(5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not int"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\n", password=5)  # type: ignore[arg-type]
    # A str without -----BEGIN is still a file name (kept on purpose: lab.ca_bundle, "server.pem").
    (tmp_path / "c.pem").write_bytes(CA().cert_pem)
    assert load_certificate(str(tmp_path / "c.pem")).subject


def test_load_pkcs12_bad_inputs_are_course_errors(leaf, tmp_path):
    blob = leaf.pkcs12(password="pw")
    with pytest.raises(PEMError, match="no file"):
        load_pkcs12(str(tmp_path / "missing.p12"))
    with pytest.raises(PEMError, match="not a PKCS#12 bundle"):
        load_pkcs12(leaf.cert_pem.decode())  # PEM text where a .p12 was expected
    with pytest.raises(PEMError, match="not a PKCS#12 bundle"):
        load_pkcs12(leaf.cert_pem)
    assert load_pkcs12(bytearray(blob), "pw").cert == leaf.cert
    assert load_pkcs12(memoryview(blob), b"pw").cert == leaf.cert
    (tmp_path / "b.p12").write_bytes(blob)
    assert load_pkcs12(tmp_path / "b.p12", "pw").cert == leaf.cert
    with pytest.raises(KeyPasswordError, match="not UTF-8") as info:
        load_pkcs12(blob, b"\xff\xfe")  # cryptography 50 raises a bare TypeError here
    assert info.value.hint
    with pytest.raises(KeyPasswordError):
        load_pkcs12(blob, "p\u00e4")
    with pytest.raises(UsageError, match="not int"):
        load_pkcs12(blob, 5)  # type: ignore[arg-type]
    with pytest.raises(KeyPasswordError):
        load_pkcs12(b"\x30\x03\x02\x01\x00", "pw")


def test_a_password_of_the_wrong_type_never_becomes_nul_bytes(leaf, tmp_path):
    # bytes(5) is b"\x00" * 5: without a type check, password=5 would encrypt with that.
    with pytest.raises(UsageError, match="not int"):
        leaf.key_pem(password=5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not int"):
        write_private_key(tmp_path / "k.pem", leaf.key, password=5)  # type: ignore[arg-type]
    assert not (tmp_path / "k.pem").exists()


# --------------------------------------------------------------------------- issue 13 (N4): name constraints

X509_PERMITTED_VIOLATION = 47  # "permitted subtree violation"


@pytest.fixture(scope="module")
def fenced() -> CA:
    """A root that may vouch for lab names and loopback only, like the lab's."""
    return CA("Fenced Root", permitted=("lab.localhost", "127.0.0.0/8", "::1/128"))


def test_name_constraints_extension_is_critical_and_lists_the_subtrees(fenced):
    extension = ext(fenced.cert, x509.NameConstraints)
    assert extension.critical  # RFC 5280 §4.2.1.10: conforming CAs MUST mark it critical
    assert extension.value.permitted_subtrees == [
        x509.DNSName("lab.localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    ]
    assert extension.value.excluded_subtrees is None
    with pytest.raises(x509.ExtensionNotFound):
        ext(CA().cert, x509.NameConstraints)  # only when asked for


def test_a_fenced_root_vouches_for_lab_names_only(serve, fenced, tmp_path):
    root_pem = tmp_path / "fenced.pem"
    root_pem.write_bytes(fenced.cert_pem)
    inter = fenced.create_intermediate()
    inside = serve(inter.issue(HOST, "127.0.0.1"))
    assert talk(inside, client_context(root_pem, strict=True)) == "TLSv1.3"
    assert talk(inside, client_context(root_pem), host="127.0.0.1")
    # The same CA signs a leaf for a real site (or one extra name outside the fence):
    # every client that enforces nameConstraints refuses the whole chain.
    for names in (("www.bank.example",), (HOST, "www.bank.example"), (HOST, "192.0.2.1")):
        outside = serve(inter.issue(*names))
        code = verify_error(outside, client_context(root_pem), host=names[0])
        assert code == X509_PERMITTED_VIOLATION, names


def test_bad_subtrees_are_pki_errors():
    with pytest.raises(PKIError, match="address block"):
        CA(permitted=("127.0.0.1/8",))  # host bits set
    with pytest.raises(PKIError, match="DNS subtree"):
        CA(permitted=("*.lab.localhost",))
    fenced = CA(permitted=("127.0.0.1", x509.DNSName("127.0.0.1")))
    assert ext(fenced.cert, x509.NameConstraints).value.permitted_subtrees == [
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.DNSName("127.0.0.1"),
    ]


def _lab_generation(tmp_path: Path):
    from helpers.lab import build

    return build, build.ensure(tmp_path / "cache")


@pytest.mark.tools
def test_the_lab_root_is_fenced_and_passes_strict_openssl(tmp_path):
    build, files = _lab_generation(tmp_path)
    root = load_certificate(files.ca_bundle)
    extension = ext(root, x509.NameConstraints)
    assert extension.critical
    permitted = extension.value.permitted_subtrees
    assert x509.DNSName("lab.localhost") in permitted
    assert x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")) in permitted
    assert x509.IPAddress(ipaddress.ip_network("::1/128")) in permitted
    assert all(isinstance(n, (x509.DNSName, x509.IPAddress)) for n in permitted)
    # Nothing a real site could be called: lab.localhost only. No dNSName that is an IP
    # address either: rustls (uv) rejects such a constraint as malformed and then trusts
    # nothing under the root (helpers/lab/build.py, LAB_PERMITTED).
    dns = {n.value for n in permitted if isinstance(n, x509.DNSName)}
    assert dns == {"lab.localhost"}, dns
    # So the address-only leaf's CN must not look like a host name (OpenSSL would check it
    # against the DNS subtrees): its CN has a space in it.
    ip_leaf = load_certificate(files.chains["ip-san"])
    (cn,) = ip_leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert " " in cn.value and cn.value.startswith("127.0.0.1"), cn.value
    # The root itself passes OpenSSL's RFC 5280 profile checks ...
    result = openssl("verify", "-x509_strict", "-CAfile", files.ca_bundle, files.ca_bundle)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr
    # ... and no chain the lab issues under it trips over the fence, with OpenSSL's CN
    # check of DNS constraints on (the CLI does not turn it off, unlike Python's ssl).
    for name, chain in [*files.chains.items(), ("client", files.client_chain)]:
        out = openssl(
            "verify", "-x509_strict", "-CAfile", files.ca_bundle, "-untrusted", chain, chain
        )
        assert "subtree violation" not in out.stdout + out.stderr, (name, out.stderr)
    for name in ("valid", "wildcard", "ip-san", "no-san", "wrong-host", "revoked"):
        chain = files.chains[name]
        out = openssl(
            "verify", "-x509_strict", "-CAfile", files.ca_bundle, "-untrusted", chain, chain
        )
        assert out.returncode == 0, (name, out.stderr)


def test_a_lab_cache_from_before_the_fence_is_rebuilt(tmp_path, monkeypatch):
    """Changing what the root carries changes the cache key: an old generation is not reused."""
    from helpers.lab import build

    with monkeypatch.context() as before:
        before.setattr(build, "FORMAT", build.FORMAT - 1)
        before.setattr(build, "LAB_PERMITTED", ())
        old = build.ensure(tmp_path)
        with pytest.raises(x509.ExtensionNotFound):
            ext(load_certificate(old.ca_bundle), x509.NameConstraints)
    new = build.ensure(tmp_path)
    assert new.built and new.directory != old.directory
    assert ext(load_certificate(new.ca_bundle), x509.NameConstraints).critical
    assert build.ensure(tmp_path).directory == new.directory  # and then it is reused
