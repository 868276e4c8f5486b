"""helpers.acme.jws: JWS as RFC 8555 §6.2 uses it, and every way verify() refuses one."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from helpers.acme import jws
from helpers.acme.problems import AcmeProblem
from helpers.errors import ParseError

URL = "https://127.0.0.1:14000/new-order"
KID = "https://127.0.0.1:14000/acct/1"


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _no_kid(_kid: str) -> None:
    raise AssertionError("a jwk request must not look up a kid")


def _body(signed: dict[str, str]) -> bytes:
    return json.dumps(signed).encode()


def _resign(key: jws.Key, header: dict, payload: str = "") -> bytes:
    """A JWS with an arbitrary protected header, signed correctly (to test header rules)."""
    protected = jws.b64url(json.dumps(header).encode())
    data = f"{protected}.{payload}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return _body({"protected": protected, "payload": payload, "signature": jws.b64url(sig)})


def _problem(body: bytes, key_for_kid=_no_kid) -> AcmeProblem:
    with pytest.raises(AcmeProblem) as info:
        jws.verify(body, key_for_kid)
    return info.value


# --- base64url
def test_b64url_round_trip_and_strictness() -> None:
    for data in (b"", b"\x00", b"\xfb\xff\xbf", bytes(range(256))):
        text = jws.b64url(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert jws.b64url_decode(text) == data
    for bad in ("ab=", "a+b/", "a b", "abcde", "é"):
        with pytest.raises(ParseError):
            jws.b64url_decode(bad)


# --- thumbprints (RFC 7638)
# The RSA key of RFC 7638 §3.1 (the JWK of RFC 7517 Appendix A.1) and its thumbprint, as
# printed in the RFC (found with the search tool; several independent implementations'
# test suites quote the same values).
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
    "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_rfc7638_example() -> None:
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jws.thumbprint(jwk) == RFC7638_THUMBPRINT  # optional members do not count
    # The same key as a cryptography object gives the same JWK and thumbprint.
    public = jws.jwk_public_key({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})
    assert jws.public_jwk(public) == {"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}
    assert jws.thumbprint(jws.public_jwk(public)) == RFC7638_THUMBPRINT


def test_thumbprint_needs_required_members() -> None:
    with pytest.raises(ParseError):
        jws.thumbprint({"kty": "RSA", "n": RFC7638_N})
    with pytest.raises(ParseError):
        jws.thumbprint({"kty": "oct", "k": "AAAA"})


def test_ec_jwk_has_full_length_coordinates(ec_key) -> None:
    jwk = jws.public_jwk(ec_key)
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    assert len(jws.b64url_decode(jwk["x"])) == 32 and len(jws.b64url_decode(jwk["y"])) == 32
    assert jws.jwk_public_key(jwk).public_numbers() == ec_key.public_key().public_numbers()


def test_key_authorization(ec_key) -> None:
    assert jws.key_authorization("tok-1", ec_key) == "tok-1." + jws.thumbprint(
        jws.public_jwk(ec_key)
    )


# --- round trips
@pytest.mark.parametrize("which", ["ec_key", "rsa_key"])
def test_round_trip_jwk_and_kid(which: str, request: pytest.FixtureRequest) -> None:
    key = request.getfixturevalue(which)
    signed = jws.sign(
        key, {"identifiers": [{"type": "dns", "value": "a.lab.localhost"}]}, url=URL, nonce="n1"
    )
    got = jws.verify(_body(signed), _no_kid)
    assert got.alg == ("ES256" if which == "ec_key" else "RS256")
    assert got.protected["url"] == URL and got.protected["nonce"] == "n1"
    assert got.jwk == jws.public_jwk(key) and got.kid is None
    assert got.json() == {"identifiers": [{"type": "dns", "value": "a.lab.localhost"}]}

    as_get = jws.sign(key, None, url=URL, nonce="n2", kid=KID)
    assert as_get["payload"] == ""
    got = jws.verify(_body(as_get), {KID: key.public_key()}.get)
    assert got.kid == KID and got.jwk is None and got.json() is None


def test_es256_signature_is_raw_r_s(ec_key) -> None:
    """RFC 7518 §3.4: 64 bytes r||s, which a DER-based verifier accepts once re-encoded."""
    signed = jws.sign(ec_key, {}, url=URL, nonce="n")
    raw = jws.b64url_decode(signed["signature"])
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    ec_key.public_key().verify(
        der, f"{signed['protected']}.{signed['payload']}".encode(), ec.ECDSA(hashes.SHA256())
    )


# --- what verify refuses
def test_rejects_tampered_payload(ec_key) -> None:
    signed = jws.sign(ec_key, {"onlyReturnExisting": True}, url=URL, nonce="n")
    signed["payload"] = jws.b64url(b'{"onlyReturnExisting":false}')
    assert _problem(_body(signed)).type == "malformed"


def test_rejects_tampered_header(rsa_key) -> None:
    signed = jws.sign(rsa_key, {}, url=URL, nonce="n", kid=KID)
    header = json.loads(jws.b64url_decode(signed["protected"]))
    header["url"] = URL.replace("new-order", "revoke-cert")
    signed["protected"] = jws.b64url(json.dumps(header).encode())
    assert _problem(_body(signed), {KID: rsa_key.public_key()}.get).type == "malformed"


def test_rejects_signature_by_another_key(ec_key) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    signed = jws.sign(other, {}, url=URL, nonce="n", kid=KID)
    assert _problem(_body(signed), {KID: ec_key.public_key()}.get).type == "malformed"


def test_rejects_der_signature(ec_key) -> None:
    signed = jws.sign(ec_key, {}, url=URL, nonce="n")
    data = f"{signed['protected']}.{signed['payload']}".encode()
    signed["signature"] = jws.b64url(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
    problem = _problem(_body(signed))
    assert problem.type == "malformed" and "r||s" in problem.detail


def test_rejects_wrong_alg_for_key(ec_key, rsa_key) -> None:
    header = {"alg": "RS256", "nonce": "n", "url": URL, "jwk": jws.public_jwk(ec_key)}
    problem = _problem(_resign(ec_key, header))
    assert problem.type == "badSignatureAlgorithm" and "RSA" in problem.detail
    header = {"alg": "ES256", "nonce": "n", "url": URL, "jwk": jws.public_jwk(rsa_key)}
    assert _problem(_resign(rsa_key, header)).type == "badSignatureAlgorithm"


@pytest.mark.parametrize("alg", ["none", "HS256", None, "ES512"])
def test_rejects_unsupported_alg(ec_key, alg) -> None:
    header = {"nonce": "n", "url": URL, "jwk": jws.public_jwk(ec_key)}
    if alg is not None:
        header["alg"] = alg
    body = _resign(ec_key, header)
    if alg == "none":  # what an attacker sends: no signature at all
        outer = json.loads(body)
        outer["signature"] = ""
        body = json.dumps(outer).encode()
    problem = _problem(body)
    assert problem.type == "badSignatureAlgorithm"
    assert problem.document()["algorithms"] == list(jws.ALGORITHMS)
    if alg == "none":
        assert "not signed" in problem.detail


def test_rejects_both_jwk_and_kid(ec_key) -> None:
    header = {"alg": "ES256", "nonce": "n", "url": URL, "jwk": jws.public_jwk(ec_key), "kid": KID}
    problem = _problem(_resign(ec_key, header), {KID: ec_key.public_key()}.get)
    assert problem.type == "malformed" and "both" in problem.detail


def test_rejects_neither_jwk_nor_kid(ec_key) -> None:
    problem = _problem(_resign(ec_key, {"alg": "ES256", "nonce": "n", "url": URL}))
    assert problem.type == "malformed" and "neither" in problem.detail


def test_unknown_kid_is_account_does_not_exist(ec_key) -> None:
    signed = jws.sign(ec_key, {}, url=URL, nonce="n", kid=KID)
    assert _problem(_body(signed), {}.get).type == "accountDoesNotExist"


def test_rejects_missing_url(ec_key) -> None:
    header = {"alg": "ES256", "nonce": "n", "jwk": jws.public_jwk(ec_key)}
    assert "url" in _problem(_resign(ec_key, header)).detail


def test_rejects_bad_base64url(ec_key) -> None:
    signed = jws.sign(ec_key, {}, url=URL, nonce="n")
    for member in ("protected", "payload", "signature"):
        broken = dict(signed, **{member: signed[member] + "="})
        problem = _problem(_body(broken))
        assert problem.type == "malformed" and "base64url" in problem.detail


def test_rejects_non_json_protected_header(ec_key) -> None:
    protected = jws.b64url(b"alg=ES256")
    body = _body({"protected": protected, "payload": "", "signature": "AAAA"})
    problem = _problem(body)
    assert problem.type == "malformed" and "not JSON" in problem.detail


def test_rejects_duplicate_header_members(ec_key) -> None:
    raw = f'{{"alg":"ES256","nonce":"n","url":"{URL}","kid":"{KID}","url":"https://evil/"}}'
    body = _body({"protected": jws.b64url(raw.encode()), "payload": "", "signature": "AAAA"})
    assert "duplicate" in _problem(body, {KID: ec_key.public_key()}.get).detail


def test_rejects_unprotected_header_and_general_serialization(ec_key) -> None:
    signed = jws.sign(ec_key, {}, url=URL, nonce="n")
    assert _problem(_body(dict(signed, header={"kid": KID}))).type == "malformed"
    assert _problem(_body({"payload": "", "signatures": [signed]})).type == "malformed"


def test_rejects_not_an_object() -> None:
    assert _problem(b"[1, 2]").type == "malformed"
    assert _problem(b"\xff\xfe").type == "malformed"
    assert _problem(b'{"protected": "e30"}').type == "malformed"


def test_rejects_oversize_body(ec_key) -> None:
    signed = jws.sign(ec_key, {"pad": "x" * jws.MAX_JWS_BYTES}, url=URL, nonce="n")
    problem = _problem(_body(signed))
    assert problem.status == 413 and problem.type == "malformed"


def test_rejects_weak_rsa_and_private_members(ec_key) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    header = {"alg": "RS256", "nonce": "n", "url": URL, "jwk": jws.public_jwk(weak)}
    assert _problem(_resign(weak, header)).type == "badPublicKey"
    leaky = dict(jws.public_jwk(ec_key), d="AAAA")
    header = {"alg": "ES256", "nonce": "n", "url": URL, "jwk": leaky}
    assert "private" in _problem(_resign(ec_key, header)).detail


def test_rejects_point_not_on_curve(ec_key) -> None:
    jwk = dict(jws.public_jwk(ec_key))
    y = bytearray(jws.b64url_decode(jwk["y"]))
    y[-1] ^= 1
    jwk["y"] = jws.b64url(bytes(y))
    header = {"alg": "ES256", "nonce": "n", "url": URL, "jwk": jwk}
    assert _problem(_resign(ec_key, header)).type == "badPublicKey"


def test_problem_document_round_trip() -> None:
    problem = AcmeProblem("badNonce", "The nonce was used before.", 400)
    doc = problem.document()
    assert doc == {
        "type": "urn:ietf:params:acme:error:badNonce",
        "detail": "The nonce was used before.",
        "status": 400,
    }
    again = AcmeProblem.from_document(doc, 400)
    assert (again.type, again.detail, again.status) == (
        "badNonce",
        "The nonce was used before.",
        400,
    )
    assert "fresh nonce" in str(again)  # the hint
    odd = AcmeProblem.from_document({"title": "teapot"}, 418)
    assert odd.status == 418 and "no detail" in odd.detail
