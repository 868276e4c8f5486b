"""Checks for the exercises of notebook 03 · Inspecting certificates.

Each check calls your function on certificates it makes itself first (cheap, offline),
then on certificates it fetches from the local lab's servers over a real TLS handshake,
and compares with what ``cryptography`` reads from the same bytes.
"""

from __future__ import annotations

import datetime as _dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import exercise

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; the package supports 3.10)


def _lab_chains(*scenarios: str) -> dict[str, list[x509.Certificate]]:
    """The chains lab servers send, fetched with real handshakes (leaf first)."""
    from .. import fetch
    from ..lab import get_lab

    lab = get_lab()
    results = fetch.fetch_certificates(
        [lab.url(name) for name in scenarios], cafile=str(lab.ca_bundle), progress=False
    )
    chains = {}
    for name, result in zip(scenarios, results, strict=True):
        assert result.chain, f"the lab server {name!r} sent no certificate: {result.error}"
        chains[name] = result.chain
    return chains


def _lab_root() -> x509.Certificate:
    from ..lab import get_lab
    from ..pki import load_certificate

    return load_certificate(get_lab().ca_bundle)


def _expected_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(g.value) for g in san if isinstance(g, (x509.DNSName, x509.IPAddress))]


# --------------------------------------------------------------------------- sans_of


@exercise(
    "nb03",
    hints=[
        "cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value is a list "
        "of GeneralName objects; each has a .value.",
        "A certificate without the extension raises x509.ExtensionNotFound: return [] then.",
        "IP addresses come back as ipaddress.IPv4Address/IPv6Address objects: str() them.",
    ],
)
def sans_of(answer):
    from ..pki import self_signed

    made = self_signed("shop.lab.localhost", "*.api.lab.localhost", "127.0.0.1", "::1")
    got = answer(made.cert)
    assert isinstance(got, list), f"return a list of strings, not {type(got).__name__}"
    want = ["shop.lab.localhost", "*.api.lab.localhost", "127.0.0.1", "::1"]
    assert got == want, f"for a certificate naming {want} you returned {got!r}"
    cn_only = self_signed("legacy.lab.localhost", san=False)
    got = answer(cn_only.cert)
    assert got == [], (
        f"a certificate with no subjectAltName names nothing (the CN is not a SAN), "
        f"but you returned {got!r}"
    )
    chains = _lab_chains("valid", "wildcard", "ip-san", "no-san", "wrong-host")
    for scenario, chain in chains.items():
        got, want = answer(chain[0]), _expected_sans(chain[0])
        assert got == want, (
            f"the lab server {scenario!r} sent a certificate naming {want}, "
            f"but you returned {got!r}"
        )


# --------------------------------------------------------------------------- is_issued_by


@exercise(
    "nb03",
    hints=[
        "Two things must hold: child.issuer == parent.subject, and the parent's public key "
        "verifies child.signature over child.tbs_certificate_bytes.",
        "cryptography does both in one call: child.verify_directly_issued_by(parent). It "
        "raises ValueError (names differ) or InvalidSignature (signature does not verify).",
        "Return False instead of letting those exceptions escape (from cryptography.exceptions "
        "import InvalidSignature); note that RSA and EC keys verify differently.",
    ],
)
def is_issued_by(answer):
    from ..pki import CA

    root = CA("Exercise Root CA")
    leaf = root.issue("shop.lab.localhost")
    got = answer(leaf.cert, root.cert)
    assert isinstance(got, bool), f"return True or False, not {got!r}"
    assert got is True, "a leaf issued by this very root should give True"

    chains = _lab_chains("valid")
    lab_leaf, lab_inter = chains["valid"][0], chains["valid"][1]
    lab_root = _lab_root()
    cases = [
        ("the lab leaf and the lab intermediate that signed it", lab_leaf, lab_inter, True),
        ("the lab intermediate and the lab root", lab_inter, lab_root, True),
        ("the lab root and itself (a root signs itself)", lab_root, lab_root, True),
        (
            "the lab leaf and the lab root (it was signed by the intermediate)",
            lab_leaf,
            lab_root,
            False,
        ),
        ("the lab leaf and an unrelated root", lab_leaf, root.cert, False),
    ]
    # A forgery: a CA that merely *copies the name* of the lab intermediate.
    impostor = CA(
        lab_inter.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value,  # type: ignore[arg-type]
        organization="TLS Course",
    )
    forged = impostor.issue("valid.lab.localhost").cert
    assert forged.issuer == lab_inter.subject  # same name, different key
    cases.append(
        ("a forged leaf whose issuer *name* is the lab intermediate's", forged, lab_inter, False)
    )
    # A real certificate with one byte of its signed part changed (the host name).
    der = lab_leaf.public_bytes(Encoding.DER)
    tampered = x509.load_der_x509_certificate(der.replace(b"valid.lab", b"vaLid.lab", 1))
    cases.append(("the lab leaf with one byte of its name changed", tampered, lab_inter, False))
    # An RSA issuer: its signatures are PKCS#1 v1.5, not ECDSA.
    rsa_root = CA("Exercise RSA Root CA", key_type="rsa")
    rsa_leaf = rsa_root.issue("rsa.lab.localhost").cert
    cases.append(("a leaf signed by an RSA root, and that root", rsa_leaf, rsa_root.cert, True))
    cases.append(("the same leaf, and the lab root", rsa_leaf, lab_root, False))
    for what, child, parent, want in cases:
        got = answer(child, parent)
        assert got is want, f"for {what} you returned {got!r}, expected {want}"


# --------------------------------------------------------------------------- alert_level

#: Warn once two thirds of the lifetime are gone (the renewal should have happened: ACME
#: clients renew then); critical once less than a tenth of the lifetime is left.
WARN_LEFT, CRITICAL_LEFT = 1 / 3, 1 / 10


def _expected_level(cert: x509.Certificate, now: _dt.datetime) -> str:
    if now < cert.not_valid_before_utc:
        return "not yet valid"
    if now > cert.not_valid_after_utc:
        return "expired"
    left = (cert.not_valid_after_utc - now) / (cert.not_valid_after_utc - cert.not_valid_before_utc)
    if left < CRITICAL_LEFT:
        return "critical"
    if left < WARN_LEFT:
        return "warn"
    return "ok"


@exercise(
    "nb03",
    hints=[
        "Compare now with cert.not_valid_before_utc and cert.not_valid_after_utc (aware UTC "
        "datetimes; the old not_valid_after is naive and deprecated). Use the now you are "
        "given, not datetime.now(): the check asks about other days.",
        "Dividing two timedeltas gives a float: (not_after - now) / (not_after - not_before) "
        "is the fraction of the lifetime still left, 1.0 at issue and 0.0 at the end.",
        "Check in this order: not yet valid, expired, then less than 1/10 of the lifetime left "
        "(critical), less than 1/3 left (warn: an ACME client renews at two thirds), else ok.",
    ],
)
def alert_level(answer):
    from ..pki import new_private_key, self_signed

    day = _dt.timedelta(days=1)
    # A day about three years ahead: an answer that reads the clock instead of `now` sees
    # every test certificate as not yet valid, whenever the check runs.
    now = (_dt.datetime.now(_UTC) + 1000 * day).replace(hour=12, minute=0, second=0, microsecond=0)
    key = new_private_key()

    def cert(lifetime: float, left: float) -> x509.Certificate:
        """A certificate of ``lifetime`` days with ``left`` days to go at ``now``."""
        return self_signed(
            "monitor.lab.localhost",
            key=key,
            not_before=now + (left - lifetime) * day,
            not_after=now + left * day,
        ).cert

    first = cert(90, 60)
    got = answer(first, now)
    assert isinstance(got, str), f"return one of the level strings, not {got!r}"
    assert got != "not yet valid", (
        "a 90-day certificate issued 30 days before the `now` the check passed you is not "
        "'not yet valid': use the `now` argument, not datetime.now() (the check asks about a "
        f"day, {now:%Y-%m-%d})"
    )
    assert got == "ok", f"a 90-day certificate with 60 days left should be 'ok', not {got!r}"

    fresh = answer(cert(6, 6 - 1 / 24), now)
    assert fresh == "ok", (
        f"a 6-day certificate issued an hour ago gave {fresh!r}: it has almost all of its life "
        "ahead. Fixed thresholds (7 or 30 days left) alarm the moment a short-lived "
        "certificate is issued; compare the time left with the certificate's own lifetime "
        "(ACME clients renew at two thirds of it)"
    )
    long_one = answer(cert(200, 60), now)
    assert long_one == "warn", (
        f"a 200-day certificate with 60 days left gave {long_one!r}: its renewal was due after "
        "133 days (two thirds), so it is overdue: 'warn'. A fixed 30-day rule notices a month "
        "too late"
    )
    cases = [
        (cert(90, 29.5), now, "90-day certificate, 29.5 days left"),
        (cert(90, 30.5), now, "90-day certificate, 30.5 days left"),
        (cert(90, 12), now, "90-day certificate, 12 days left"),
        (cert(90, 9.5), now, "90-day certificate, 9.5 days left"),
        (cert(90, 8.5), now, "90-day certificate, 8.5 days left"),
        (cert(90, 0.25), now, "90-day certificate, 6 hours left"),
        (cert(6, 1.5), now, "6-day certificate, 1.5 days left"),
        (cert(6, 0.5), now, "6-day certificate, 12 hours left"),
        (cert(398, 35), now, "398-day certificate, 35 days left"),
        (cert(90, -1), now, "90-day certificate that expired yesterday"),
        (cert(90, 93), now, "90-day certificate that starts in 3 days"),
        (first, now + 31 * day, "90-day certificate, 31 days later"),
        (first, now + 61 * day, "90-day certificate, 61 days later"),
    ]
    for certificate, moment, what in cases:
        got, want = answer(certificate, moment), _expected_level(certificate, moment)
        assert got == want, f"for a {what} you returned {got!r}, expected {want!r}"
    real_now = _dt.datetime.now(_UTC)
    chains = _lab_chains("valid", "expired", "not-yet-valid")
    for scenario, chain in chains.items():
        got, want = answer(chain[0], real_now), _expected_level(chain[0], real_now)
        assert got == want, (
            f"for the certificate of the lab's {scenario!r} server you returned {got!r}, "
            f"expected {want!r}"
        )


__all__ = ["alert_level", "is_issued_by", "sans_of"]
