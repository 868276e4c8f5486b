"""Checks for the exercises of notebook 08 · Hardening and revocation."""

from __future__ import annotations

import datetime as _dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from . import exercise

_VERSION_NAMES = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@exercise(
    "nb08",
    hints=[
        "For each version in ssl.TLSVersion.TLSv1, TLSv1_1, TLSv1_2, TLSv1_3: make a fresh "
        "ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) and set minimum_version AND maximum_version "
        "to that version, then try a handshake; tls.version() names what was negotiated.",
        "A probe only looks: check_hostname = False and verify_mode = ssl.CERT_NONE are fine "
        "here (never for real traffic). Catch ssl.SSLError and OSError: a refusal is an answer.",
        "OpenSSL 3 will not even offer TLS 1.0/1.1 at its default security level: call "
        "ctx.set_ciphers('ALL:@SECLEVEL=0') first. Python warns (DeprecationWarning) when you "
        "set TLS 1.0: wrap the two assignments in warnings.catch_warnings() with "
        "warnings.simplefilter('ignore', DeprecationWarning).",
    ],
)
def accepted_versions(answer):
    from ..lab import get_lab
    from ..probe import scan

    lab = get_lab()
    first = "tls-1.0-only"
    got = answer(lab.host(first), lab.port(first))
    assert isinstance(got, list), f"return a list of version names, not {type(got).__name__}"
    assert all(isinstance(v, str) for v in got), (
        "return version names as tls.version() spells them: 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'"
    )
    for scenario in ("tls-1.0-only", "tls-1.1-only", "tls-1.2-only", "valid"):
        if scenario != first:
            got = answer(lab.host(scenario), lab.port(scenario))
        want = scan(scenario, http=False).accepted_versions
        assert got == want, (
            f"{scenario} ({lab.host(scenario)}): you returned {got}, but one handshake per "
            f"version says {want} (oldest first)"
        )


def _reference_letter(protocol: float, key_exchange: float, cipher: float, caps: list[str]) -> str:
    from ..probe import LETTERS, WEIGHTS

    if 0 in (protocol, key_exchange, cipher):
        score = 0.0
    else:
        score = (
            WEIGHTS["protocol"] * protocol
            + WEIGHTS["key_exchange"] * key_exchange
            + WEIGHTS["cipher"] * cipher
        )
    letter = next(letter for minimum, letter in LETTERS if score >= minimum)
    order = ["F", "E", "D", "C", "B", "A"]
    for cap in caps:
        if order.index(cap) < order.index(letter):
            letter = cap
    return letter


_CASES = [
    (100, 90, 90, []),  # 93.0
    (100, 60, 80, []),  # exactly 80: still an A
    (100, 60, 79, []),  # 79.6
    (50, 50, 50, []),
    (40, 40, 40, []),
    (20, 20, 20, []),
    (10, 10, 10, []),
    (100, 0, 100, []),  # a zero anywhere: score 0
    (90, 90, 90, ["C", "B"]),
    (100, 90, 90, ["B"]),
    (40, 40, 40, ["B"]),  # a cap never raises a grade
    (100, 90, 90, ["F"]),
]


@exercise(
    "nb08",
    hints=[
        "score = 0.3 * protocol + 0.3 * key_exchange + 0.4 * cipher, except that a 0 in any "
        "category makes the score 0 (the rating guide's rule).",
        "Walk helpers.probe.LETTERS top to bottom: (80, 'A'), (65, 'B'), ... and take the first "
        "letter whose minimum the score reaches (>=).",
        "Each cap is a ceiling: the result is the worst of the letter and every cap "
        "(order F < E < D < C < B < A). A cap of B does not lift a D.",
    ],
)
def overall_letter(answer):
    got = answer(100, 90, 90, [])
    assert isinstance(got, str), f"return the letter as a str, not {type(got).__name__}"
    for protocol, kex, cipher, caps in _CASES:
        got = answer(protocol, kex, cipher, list(caps))
        want = _reference_letter(protocol, kex, cipher, caps)
        assert got == want, (
            f"overall_letter({protocol}, {kex}, {cipher}, {caps}) returned {got!r}, expected {want!r}"
        )
    from ..probe import grade, scan

    for scenario in ("valid", "tls-1.0-only", "dh-1024", "weak-key"):
        g = grade(scan(scenario, http=False))
        got = answer(g.protocol, g.key_exchange, g.cipher, g.caps)
        assert got == g.capped_letter, (
            f"for the lab's {scenario} server (scores {g.protocol}/{g.key_exchange}/{g.cipher}, "
            f"caps {g.caps}) you returned {got!r}; helpers.probe.grade says {g.capped_letter!r}"
        )


def _lab_material() -> tuple[
    x509.Certificate, x509.Certificate, x509.Certificate, x509.CertificateRevocationList
]:
    from ..lab import get_lab
    from ..pki import load_certificates

    lab = get_lab()
    revoked_chain = load_certificates(lab.files.chains["revoked"])
    valid = load_certificates(lab.files.chains["valid"])[0]
    crl = x509.load_pem_x509_crl(lab.crl.read_bytes())
    return revoked_chain[0], valid, revoked_chain[1], crl


def _stale_crl() -> tuple[x509.Certificate, x509.CertificateRevocationList, x509.Certificate]:
    """A certificate, a CRL its real issuer signed (not listing it) that expired 3 days ago,
    and the issuer: the CRL was true once, but revocations since then are missing."""
    from .. import pki

    ca = pki.CA("Check Issuing CA")
    leaf = ca.issue("stale-crl.lab.localhost")
    now = _dt.datetime.now(_dt.timezone.utc)  # noqa: UP017
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - _dt.timedelta(days=10))
        .next_update(now - _dt.timedelta(days=3))
        .sign(ca.key, hashes.SHA256())
    )
    return leaf.cert, stale, ca.cert


def _forged_crl(issuer: x509.Certificate, serial: int) -> x509.CertificateRevocationList:
    """A CRL with the issuer's *name*, listing ``serial``, signed by somebody else's key."""
    now = _dt.datetime.now(_dt.timezone.utc)  # noqa: UP017
    entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now - _dt.timedelta(hours=1))
        .next_update(now + _dt.timedelta(days=1))
        .add_revoked_certificate(entry)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )


@exercise(
    "nb08",
    hints=[
        "crl.get_revoked_certificate_by_serial_number(cert.serial_number) returns an entry, "
        "or None when the serial is not listed.",
        "A serial number is unique only per issuer (RFC 5280 §4.1.2.2): first check that "
        "crl.issuer == issuer.subject, and raise ValueError if not.",
        "Anybody can write a CRL with the right issuer name: also check "
        "crl.is_signature_valid(issuer.public_key()) and raise ValueError if it is False.",
        "A CRL is only news until its nextUpdate (RFC 5280 §5.1.2.5): after that, revocations "
        "made since are missing. Compare crl.next_update_utc with "
        "datetime.datetime.now(datetime.UTC) and raise ValueError when it is None or past.",
    ],
)
def is_revoked(answer):
    revoked, valid, issuer, crl = _lab_material()
    got = answer(revoked, crl, issuer)
    assert isinstance(got, bool), f"return True or False, not {got!r}"
    assert got is True, "the lab's 'revoked' certificate is on the lab CRL: expected True"
    assert answer(valid, crl, issuer) is False, "the lab's 'valid' certificate is not on the CRL"
    from .. import pki

    stranger = pki.CA("Some Other CA")
    other_crl = x509.load_pem_x509_crl(stranger.crl_pem())
    try:
        answer(valid, other_crl, issuer)
    except ValueError:
        pass
    else:
        raise AssertionError(
            "a CRL from another CA says nothing about this issuer's serials: raise ValueError"
        )
    forged = _forged_crl(issuer, valid.serial_number)
    try:
        result = answer(valid, forged, issuer)
    except ValueError:
        pass
    else:
        raise AssertionError(
            f"a CRL with the right issuer name but somebody else's signature returned {result!r}: "
            "check crl.is_signature_valid(issuer.public_key()) and raise ValueError"
        )
    cert, stale, stale_issuer = _stale_crl()
    try:
        result = answer(cert, stale, stale_issuer)
    except ValueError:
        pass
    else:
        raise AssertionError(
            f"a genuine CRL whose nextUpdate passed 3 days ago returned {result!r}: a stale CRL "
            "misses every revocation made since, so 'not listed' proves nothing. Compare "
            "crl.next_update_utc with the current UTC time and raise ValueError"
        )


_BANK = "bank.lab.localhost"
_HALF_YEAR = 15_768_000  # seconds: SSL Labs' minimum HSTS max-age for A+


def _call_hardened(answer, certfile: str, keyfile: str):
    import ssl

    got = answer(certfile, keyfile)
    if got is None:
        raise AssertionError(
            "your function returned None: return a tuple (context, headers), e.g. "
            "(ctx, {'Strict-Transport-Security': 'max-age=31536000'})"
        )
    if not (isinstance(got, tuple) and len(got) == 2):
        raise AssertionError(
            f"return a tuple (context, headers), not {type(got).__name__}: the server context "
            "and the response headers (a dict) the site sends"
        )
    ctx, headers = got
    if not isinstance(ctx, ssl.SSLContext):
        raise AssertionError(f"the first item must be an ssl.SSLContext, not {type(ctx).__name__}")
    if ctx.protocol != ssl.PROTOCOL_TLS_SERVER:
        raise AssertionError(
            "that is not a server context: start from ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) "
            "or ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)"
        )
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise AssertionError(
            f"the headers must be a dict of name -> value, not {type(headers).__name__}"
        )
    return ctx, headers


def _unsafe_but_graded_well(ctx, result) -> str | None:
    """What a good letter does not show: the reasons this check refuses an A+ anyway."""
    import ssl

    if ctx.security_level < 2:
        return (
            f"your context runs at OpenSSL security level {ctx.security_level}: '@SECLEVEL=0' or 1 "
            "is for probes that must *see* weak servers, never for a server you run (it re-admits "
            "SHA-1 signatures and small keys). Drop it from set_ciphers"
        )
    if ctx.minimum_version not in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        return (
            f"ctx.minimum_version is {ctx.minimum_version.name}: TLS 1.0/1.1 are refused today "
            "only because of OpenSSL's security level (Debian/Ubuntu Pythons do not set a TLS 1.2 "
            "floor, and a system crypto policy can lower the level). Set "
            "ctx.minimum_version = ssl.TLSVersion.TLSv1_2 yourself"
        )
    static = [s.iana for s in result.suites if not s.forward_secret]
    if static:
        return (
            f"the grade is good, but your server still accepts {static[0]}: static RSA key "
            "transport, no forward secrecy. A client that offers no ECDHE suite (old Java, embedded "
            "devices) gets a session anyone who later steals the key can decrypt. Allow ECDHE suites only"
        )
    cbc = [s.iana for s in result.suites if not s.aead]
    if cbc:
        return (
            f"the grade is good, but your server still accepts {cbc[0]}: "
            "(MAC-then-encrypt CBC, with a padding-oracle history: Lucky13, POODLE-TLS). Mozilla's 'intermediate' profile "
            "allows only AEAD suites for TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305"
        )
    return None


@exercise(
    "nb08",
    hints=[
        "Start from ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) and load the certificate with "
        "ctx.load_cert_chain(certfile, keyfile). Return (ctx, headers).",
        "Versions: ctx.minimum_version = ssl.TLSVersion.TLSv1_2 (TLS 1.3 stays on). Suites for "
        "TLS 1.2: ctx.set_ciphers('ECDHE+AESGCM:ECDHE+CHACHA20'): forward secret and AEAD only "
        "(TLS 1.3's suites are all AEAD and all ephemeral already).",
        "A+ needs HSTS: headers = {'Strict-Transport-Security': 'max-age=31536000'} (at least "
        "15,768,000 s, six months). Keep the default security level: no '@SECLEVEL=0'.",
    ],
)
def hardened_server(answer):
    """Start a server with the learner's context and headers, scan it, grade it."""
    import tempfile

    from .. import pki
    from ..probe import grade, scan
    from ..servers import LoginServer

    ca = pki.CA("Hardening Check CA")
    leaf = ca.issue(_BANK, key_type="rsa")  # the legacy bank's kind of certificate
    with tempfile.TemporaryDirectory(prefix="nb08-harden-") as tmp:
        files = leaf.write(tmp, "bank")
        cafile = f"{tmp}/ca.pem"
        with open(cafile, "wb") as f:
            f.write(ca.cert_pem)
        ctx, headers = _call_hardened(answer, str(files.chain), str(files.key))
        with LoginServer(tls=ctx, headers=headers, title="Hardened Bank") as site:
            result = scan(
                ("127.0.0.1", site.port), server_hostname=_BANK, cafile=cafile, label="your server"
            )
    if not result.accepted_versions:
        raise AssertionError(
            "no handshake with your server succeeded: did you load the certificate with "
            "ctx.load_cert_chain(certfile, keyfile)? ("
            + "; ".join(f"{v}: {e}" for v, e in result.version_errors.items())
            + ")"
        )
    g = grade(result)
    fired = "; ".join(f"{rule.id} ({evidence})" for rule, evidence in g.applied if rule.cap != "A+")
    if g.letter not in ("A", "A+"):
        raise AssertionError(
            f"your server grades {g.letter} (score {g.score:.0f}); the rules that held it down: "
            f"{fired or 'none, the score itself'}"
        )
    unsafe = _unsafe_but_graded_well(ctx, result)
    if unsafe:
        raise AssertionError(unsafe)
    if g.letter == "A":
        hsts = result.hsts
        raise AssertionError(
            "A, not yet A+: "
            + (
                "no valid Strict-Transport-Security header reached the scan"
                if hsts is None
                else f"HSTS max-age is {hsts.max_age} s, below six months ({_HALF_YEAR} s)"
            )
            + ". Return headers such as {'Strict-Transport-Security': 'max-age=31536000'}"
        )
