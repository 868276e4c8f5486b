"""The course's ACME client against Pebble, Let's Encrypt's ACME test server (issue 15).

Pebble is started for this module on loopback (``tests/pebble.py``: its own config, an
HTTPS certificate from :mod:`helpers.pki`, a tiny DNS server so that it resolves the
test names to 127.0.0.1). HTTP-01 is validated for real: Pebble fetches each token from
our :class:`~helpers.acme.http01.Http01Responder`, and the responder's log shows it.
Pebble keeps rejecting 5 % of good nonces at random, so the client's badNonce retry
(RFC 8555 §6.5) is exercised by chance in every run and on purpose in one test.

Features Pebble gained over the Debian versions (2.4.0 bookworm, 2.6.0 trixie, 2.10.0
forky) are tested from what its *directory* offers, never from a version number:
``renewalInfo`` (ARI, RFC 9773) and ``meta.profiles``. The only skip: no pebble binary.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from helpers.acme import ari, jws
from helpers.acme.client import AcmeClient, Issued, Order
from helpers.acme.http01 import Http01Responder
from helpers.acme.problems import AcmeProblem
from helpers.errors import UsageError

from .pebble import SKIP_REASON, TEST_ZONE, Pebble, pebble_binary, running_pebble

pytestmark = [
    pytest.mark.skipif(pebble_binary() is None, reason=SKIP_REASON),
    pytest.mark.timeout(120),
]

#: Every name a test here orders (the DNS responder answers these, REFUSED for others).
NAMES = [
    f"{label}.{TEST_ZONE}"
    for label in ("www", "api", "renew", "short", "revoke", "nonce", "wrong", "other")
]


@pytest.fixture(scope="module")
def responder() -> Iterator[Http01Responder]:
    with Http01Responder() as server:
        yield server


@pytest.fixture(scope="module")
def pebble(
    tmp_path_factory: pytest.TempPathFactory, responder: Http01Responder
) -> Iterator[Pebble]:
    folder = tmp_path_factory.mktemp("pebble")
    with running_pebble(folder, http_port=responder.port, names=NAMES) as server:
        yield server


@pytest.fixture
def client(pebble: Pebble) -> Iterator[AcmeClient]:
    with AcmeClient(pebble.directory, ca_bundle=pebble.ca_bundle) as acme:
        yield acme


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _openssl_verify(
    issued: Issued, pebble: Pebble, folder: Path
) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` of the downloaded leaf, with the downloaded intermediates as
    untrusted helpers and Pebble's root (from its management interface) as the only anchor."""
    root = folder / "pebble-root.pem"
    root.write_bytes(_pem(pebble.roots))
    chain_path, _ = issued.write(folder, "issued")
    untrusted = folder / "untrusted.pem"
    untrusted.write_bytes(_pem(issued.chain[1:]))
    leaf = folder / "leaf.pem"
    leaf.write_bytes(_pem(issued.chain[:1]))
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(root),
            "-untrusted",
            str(untrusted),
            "-purpose",
            "sslserver",
            str(leaf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _status_at_pebble(pebble: Pebble, cert: x509.Certificate) -> str:
    """What Pebble's management interface says about a serial ("Valid"/"Revoked")."""
    resp = requests.get(
        f"{pebble.management}/cert-status-by-serial/{cert.serial_number:x}",
        verify=str(pebble.ca_bundle),
        timeout=10,
        proxies={"https": None, "http": None},
    )
    resp.raise_for_status()
    return str(resp.json()["Status"])


def test_obtain_two_names_verify_and_revoke(
    client: AcmeClient, pebble: Pebble, responder: Http01Responder, tmp_path: Path
) -> None:
    names = ["www." + TEST_ZONE, "api." + TEST_ZONE]
    issued = client.obtain(names, responder=responder)

    # HTTP-01 happened for real: Pebble fetched a token from our responder for each name
    # (Host carries the name, RFC 8555 §8.3), and the client de-provisioned them after.
    fetched = [line for line in responder.log if line.endswith("-> 200")]
    for name in names:
        assert any(f"(Host: {name}:{responder.port})" in line for line in fetched), list(
            responder.log
        )
    assert responder.tokens == []

    # What came back: our names, our key (never the account key), a chain to Pebble's root.
    assert sorted(issued.names) == sorted(names)
    assert issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == issued.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert jws.public_jwk(issued.key) != jws.public_jwk(client.account_key)
    assert issued.chain[1:] == pebble.intermediates[:1]
    verified = _openssl_verify(issued, pebble, tmp_path)
    assert verified.returncode == 0 and verified.stdout.strip().endswith(": OK"), verified
    # ... and not against the CA that made Pebble's *HTTPS* certificate.
    wrong = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pebble.ca_bundle), str(tmp_path / "leaf.pem")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert wrong.returncode != 0

    # The key file is written 0600 from the start.
    _, key_path = issued.write(tmp_path / "out", "www")
    assert key_path.stat().st_mode & 0o777 == 0o600

    # Revoke by account (RFC 8555 §7.6): Pebble's own records agree; a second time is
    # "alreadyRevoked" (400), as §7.6 describes.
    assert _status_at_pebble(pebble, issued.cert) == "Valid"
    client.revoke(issued.cert, reason=4)  # superseded
    assert _status_at_pebble(pebble, issued.cert) == "Revoked"
    with pytest.raises(AcmeProblem) as again:
        client.revoke(issued.cert)
    assert (again.value.type, again.value.status) == ("alreadyRevoked", 400)


def test_revoke_with_the_certificate_key(pebble: Pebble, responder: Http01Responder) -> None:
    """§7.6: a revocation "can be signed with ... the key pair in the certificate" --
    here by a client with a different account (the key holder, e.g. after a leak)."""
    with AcmeClient(pebble.directory, ca_bundle=pebble.ca_bundle) as owner:
        issued = owner.obtain(["revoke." + TEST_ZONE], responder=responder)
    with AcmeClient(pebble.directory, ca_bundle=pebble.ca_bundle) as stranger:
        with pytest.raises(UsageError):
            stranger.revoke(issued.cert)  # no account, no certificate key: cannot sign
        stranger.revoke(issued.cert, key=issued.key, reason=1)  # keyCompromise
    assert _status_at_pebble(pebble, issued.cert) == "Revoked"


def test_renewal_info_and_replaces_as_the_directory_offers(
    client: AcmeClient, pebble: Pebble, responder: Http01Responder
) -> None:
    name = "renew." + TEST_ZONE
    first = client.obtain([name], responder=responder)
    if "renewalInfo" not in pebble.directory_document():  # Pebble 2.4.0 (bookworm)
        assert client.renewal_info(first.cert) is None
        with pytest.raises(UsageError, match="renewalInfo"):
            client.new_order([name], replaces=first.cert)
        return
    window = client.renewal_info(first.cert)
    assert window is not None
    # RFC 9773 §4.2: a window inside the certificate's lifetime, start before end.
    assert first.cert.not_valid_before_utc < window.start < window.end <= first.not_after
    assert client.renewal_retry_after is not None and client.renewal_retry_after >= 60
    # §5: the order names the certificate it replaces; "If the server accepts a newOrder
    # request with a "replaces" field, it MUST reflect that field in the response".
    second = client.obtain([name], responder=responder, replaces=first.cert)
    order = Order(second.order_url, client.post(second.order_url, None).json())
    assert order.body.get("replaces") == ari.cert_id(first.cert) == second.replaced
    assert second.cert.serial_number != first.cert.serial_number


def test_profiles_as_the_directory_offers(
    client: AcmeClient, pebble: Pebble, responder: Http01Responder
) -> None:
    offered = client.profiles
    if not offered:  # Pebble 2.4.0 and 2.6.0: no profiles; the client refuses to ask
        with pytest.raises(UsageError, match="does not offer the profile"):
            client.new_order(["short." + TEST_ZONE], profile="shortlived")
        return
    profile = sorted(offered)[0]
    issued = client.obtain(["short." + TEST_ZONE], responder=responder, profile=profile)
    assert issued.profile == profile
    assert f"<td style='text-align:left'>{profile}</td>" in issued._repr_html_()
    # A profile the directory does not list: the client refuses before asking; the server
    # itself answers invalidProfile when asked anyway.
    with pytest.raises(UsageError):
        client.new_order(["short." + TEST_ZONE], profile="no-such-profile")
    with pytest.raises(AcmeProblem) as refused:
        client.post(
            client.directory["newOrder"],
            {
                "identifiers": [{"type": "dns", "value": "short." + TEST_ZONE}],
                "profile": "no-such-profile",
            },
        )
    assert refused.value.type == "invalidProfile"


def test_a_stale_nonce_is_retried_with_the_fresh_one(client: AcmeClient, pebble: Pebble) -> None:
    """RFC 8555 §6.5: badNonce (400) carries a fresh Replay-Nonce; the client signs the
    same request again with it. A nonce Pebble never issued is refused every time."""
    client.register()
    client._nonce = "AAAAAAAAAAAAAAAAAAAAAA"  # well-formed base64url, never issued
    before = client.bad_nonce_count
    order = client.new_order(["nonce." + TEST_ZONE])
    assert order.status in ("pending", "ready")
    assert client.bad_nonce_count >= before + 1
    assert any(line.endswith("-> 400") for line in client.log)


def test_a_wrong_key_authorization_fails_validation(
    client: AcmeClient, responder: Http01Responder
) -> None:
    """Serve the token with another key's thumbprint: Pebble fetches it, compares, and
    the authorization becomes invalid with the reason as a problem document."""
    client.register()
    order = client.new_order(["wrong." + TEST_ZONE])
    authz = client.authorization(order.authorizations[0])
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    other = ec.generate_private_key(ec.SECP256R1())
    responder.add(challenge["token"], jws.key_authorization(challenge["token"], other))
    try:
        client.post(challenge["url"], {})
        with pytest.raises(AcmeProblem) as failed:
            client.poll(order.authorizations[0], deadline=30)
    finally:
        responder.remove(challenge["token"])
    # Pebble says "unauthorized" (403); RFC 8555 §6.7 has "incorrectResponse" for this.
    assert failed.value.type in ("unauthorized", "incorrectResponse")
    assert "key authorization" in failed.value.detail


def test_the_account_key_is_never_the_certificate_key(
    client: AcmeClient, responder: Http01Responder
) -> None:
    with pytest.raises(UsageError, match="account key"):
        client.obtain(["other." + TEST_ZONE], responder=responder, key=client.account_key)
