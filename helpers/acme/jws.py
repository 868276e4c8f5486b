"""JSON Web Signatures as ACME uses them, with ``cryptography`` only (notebook 10).

Theory of operation
-------------------
Every ACME request that changes something is an HTTPS ``POST`` whose body is a JWS
(RFC 7515) in the *flattened JSON serialization* (§7.2.2)::

    {"protected": b64url(JSON header),
     "payload":   b64url(JSON request)   (or "" for POST-as-GET, RFC 8555 §6.3),
     "signature": b64url(sign(account key, protected + "." + payload))}

The protected header says how to check it (RFC 8555 §6.2)::

    {"alg": "ES256", "nonce": "...", "url": "https://ca/new-order",
     "jwk": {...}  (newAccount, or revokeCert by the certificate's key)
     | "kid": "https://ca/acct/1"  (every other request: the account URL)}

Why each member:

* ``alg`` and a signature over header *and* payload: TLS already protects the request
  in transit, but the JWS proves *which account* made it, even through a TLS-terminating
  proxy, and binds the request to that account's key (RFC 8555 §6.2).
* ``nonce``: a value the server handed out once (``Replay-Nonce``); a captured request
  replayed later is refused with ``badNonce`` (§6.5).
* ``url``: the exact URL the request was sent to; a request signed for one resource
  cannot be replayed at another (§6.4).
* ``jwk`` *or* ``kid``, never both: a new account shows its public key; a known one
  names its account URL (§6.2).

Signatures: ``ES256`` is ECDSA P-256 with SHA-256 and, unlike X.509 and TLS, the
signature is the raw ``r || s`` (32 + 32 bytes, RFC 7518 §3.4), not DER; ``RS256`` is
RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3). ``"alg": "none"`` and the MAC algorithms
(``HS256``) are refused: ACME accounts are public keys (RFC 8555 §6.2).

A key's identity is its **thumbprint** (RFC 7638): SHA-256 over the key's required
members in a canonical JSON form. HTTP-01 puts it in the *key authorization*
``token + "." + thumbprint`` (RFC 8555 §8.1), which ties a challenge response to the
account that asked for it.

:func:`verify` is the server's side and raises an
:class:`~helpers.acme.problems.AcmeProblem` with the RFC's problem type for each way a
request can be wrong. Checking the nonce and the url against the request is the
server's job (:mod:`helpers.acme.ca`): this module does not know them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import ParseError
from .problems import AcmeProblem

__all__ = [
    "ALGORITHMS",
    "MAX_JWS_BYTES",
    "Key",
    "PublicKey",
    "Verified",
    "algorithm",
    "b64url",
    "b64url_decode",
    "jwk_public_key",
    "key_authorization",
    "public_jwk",
    "sign",
    "thumbprint",
    "verify",
]

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: The largest JWS :func:`verify` reads, in bytes (the CA's request body cap).
MAX_JWS_BYTES = 64 * 1024

#: The RSA modulus below which an account key is refused (badPublicKey).
MIN_RSA_BITS = 2048

# alg -> (curve name or "RSA", hash, coordinate size in bytes for ECDSA).
_EC_ALGS: dict[str, tuple[str, hashes.HashAlgorithm, int]] = {
    "ES256": ("P-256", hashes.SHA256(), 32),  # RFC 7518 §3.4
    "ES384": ("P-384", hashes.SHA384(), 48),
}
_CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384"}

#: What :func:`verify` accepts (sent in a badSignatureAlgorithm problem, RFC 8555 §6.2).
ALGORITHMS = ("ES256", "ES384", "RS256")

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# --- base64url (RFC 7515 §2: no padding, URL-safe alphabet)
def b64url(data: bytes) -> str:
    """base64url without ``=`` padding (RFC 7515 §2, RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url without padding; anything else raises :class:`ParseError`.

    Strict on purpose: ``+``, ``/``, ``=``, spaces and an impossible length (one
    character left over) are refused, so two different strings never decode to the
    same bytes in a signed message.
    """
    if not isinstance(text, str):
        raise ParseError(
            f"base64url text must be a string, not {type(text).__name__}",
            "JWS members are JSON strings.",
        )
    match = _B64URL.fullmatch(text)
    if match is None:
        bad = next(i for i, ch in enumerate(text) if not _B64URL.fullmatch(ch))
        raise ParseError(
            f"{text[bad]!r} is not a base64url character",
            "base64url uses A-Z a-z 0-9 - _ and no '=' padding (RFC 7515 §2).",
            offset=bad,
        )
    if len(text) % 4 == 1:
        raise ParseError(
            f"{len(text)} base64url characters cannot encode whole bytes",
            "The text was cut or padded: encode the bytes again with b64url().",
        )
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover (the regex caught it)
        raise ParseError(f"not base64url ({exc})", "Encode with b64url().") from None


def _uint(value: int, size: int | None = None) -> bytes:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


# --- JWK (RFC 7517) and thumbprints (RFC 7638)
def public_jwk(key: Key | PublicKey) -> dict[str, str]:
    """The public JWK of ``key``: EC (RFC 7518 §6.2) or RSA (§6.3), required members only.

    EC coordinates are full-length octet strings (32 bytes for P-256, §6.2.1.2); RSA's
    ``n`` and ``e`` use the minimum number of octets (§6.3.1.1). Only the required
    members appear, which is exactly what a thumbprint hashes.
    """
    public = (
        key.public_key()
        if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
        else key
    )
    if isinstance(public, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES.get(public.curve.name)
        if crv is None:
            raise AcmeProblem(
                "badPublicKey",
                f"EC keys on {public.curve.name} are not used in ACME here; use P-256 or P-384.",
            )
        size = (public.curve.key_size + 7) // 8
        nums = public.public_numbers()
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url(_uint(nums.x, size)),
            "y": b64url(_uint(nums.y, size)),
        }
    if isinstance(public, rsa.RSAPublicKey):
        nums_r = public.public_numbers()
        return {"kty": "RSA", "n": b64url(_uint(nums_r.n)), "e": b64url(_uint(nums_r.e))}
    raise AcmeProblem(
        "badPublicKey", f"a {type(public).__name__} cannot be an ACME account key; use EC or RSA."
    )


_REQUIRED = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}  # RFC 7638 §3.2


def thumbprint(jwk: Mapping[str, str]) -> str:
    """The RFC 7638 thumbprint of ``jwk``: base64url(SHA-256(canonical JSON)).

    Canonical (§3): only the required members (§3.2: ``crv, kty, x, y`` for EC,
    ``e, kty, n`` for RSA), sorted by name, no whitespace, UTF-8.
    """
    members = _REQUIRED.get(str(jwk.get("kty")))
    if members is None:
        raise ParseError(
            f"a JWK of kty {jwk.get('kty')!r} has no thumbprint here",
            'Use an EC ("kty": "EC") or RSA ("kty": "RSA") key.',
        )
    missing = [m for m in members if not isinstance(jwk.get(m), str)]
    if missing:
        raise ParseError(
            f"the JWK lacks its required member {missing[0]!r}",
            "Build it with public_jwk(key) (RFC 7638 §3.2).",
        )
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def key_authorization(token: str, account_key: Key | PublicKey) -> str:
    """``token "." thumbprint(account key)``: what HTTP-01 serves (RFC 8555 §8.1)."""
    return f"{token}.{thumbprint(public_jwk(account_key))}"


def algorithm(key: Key | PublicKey) -> str:
    """The JWS ``alg`` for ``key``: ``ES256`` (P-256), ``ES384`` (P-384) or ``RS256`` (RSA)."""
    jwk = public_jwk(key)
    if jwk["kty"] == "RSA":
        return "RS256"
    return {"P-256": "ES256", "P-384": "ES384"}[jwk["crv"]]


def jwk_public_key(jwk: Any) -> PublicKey:
    """The public key a JWK describes; anything unusable raises ``badPublicKey``/``malformed``."""
    if not isinstance(jwk, Mapping):
        raise AcmeProblem("malformed", 'The "jwk" header must be a JSON object (RFC 7517 §4).')
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            crv = jwk.get("crv")
            if crv not in _CURVES:
                raise AcmeProblem(
                    "badPublicKey", f"EC curve {crv!r} is not accepted; use P-256 or P-384."
                )
            curve = _CURVES[crv]()
            size = (curve.key_size + 7) // 8
            x, y = b64url_decode(jwk.get("x", "")), b64url_decode(jwk.get("y", ""))
            if len(x) != size or len(y) != size:
                raise AcmeProblem(
                    "badPublicKey",
                    f"{crv} coordinates must be {size} bytes each (RFC 7518 §6.2.1.2).",
                )
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
            )
            return numbers.public_key()  # raises ValueError if the point is not on the curve
        if kty == "RSA":
            n = int.from_bytes(b64url_decode(jwk.get("n", "")), "big")
            e = int.from_bytes(b64url_decode(jwk.get("e", "")), "big")
            if n.bit_length() < MIN_RSA_BITS:
                raise AcmeProblem(
                    "badPublicKey",
                    f"an RSA account key of {n.bit_length()} bits is too weak; use {MIN_RSA_BITS} or more.",
                )
            return rsa.RSAPublicNumbers(e, n).public_key()
    except ParseError as exc:
        raise AcmeProblem("malformed", f"The jwk is not valid base64url: {exc.what}") from None
    except ValueError as exc:
        raise AcmeProblem("badPublicKey", f"The jwk is not a valid public key ({exc}).") from None
    raise AcmeProblem("badPublicKey", f'JWK kty {kty!r} is not accepted; use "EC" or "RSA".')


# --- signing (the client's side)
def _signing_input(protected: str, payload: str) -> bytes:
    return f"{protected}.{payload}".encode("ascii")  # RFC 7515 §5.1 step 5


def sign(
    key: Key,
    payload: Mapping[str, Any] | None,
    *,
    url: str,
    nonce: str,
    kid: str | None = None,
) -> dict[str, str]:
    """A flattened JWS (RFC 7515 §7.2.2) of ``payload`` for ``url``, as RFC 8555 §6.2 wants.

    ``payload=None`` makes a POST-as-GET (empty payload, §6.3). ``kid=None`` puts the
    public key in the header (``jwk``: newAccount, revokeCert by certificate key);
    otherwise the account URL goes in ``kid``.
    """
    alg = algorithm(key)
    header: dict[str, Any] = {"alg": alg, "nonce": nonce, "url": url}
    if kid is None:
        header["jwk"] = public_jwk(key)
    else:
        header["kid"] = kid
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = "" if payload is None else b64url(json.dumps(payload, separators=(",", ":")).encode())
    data = _signing_input(protected, body)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _, digest, size = _EC_ALGS[alg]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        signature = _uint(r, size) + _uint(s, size)  # raw r || s, RFC 7518 §3.4
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return {"protected": protected, "payload": body, "signature": b64url(signature)}


# --- verifying (the server's side)
@dataclass
class Verified:
    """A JWS whose signature checked out: what the server may now trust."""

    protected: dict[str, Any]
    payload: bytes
    alg: str
    jwk: dict[str, Any] | None
    kid: str | None
    key: PublicKey

    def json(self) -> Any:
        """The payload as JSON, or None for POST-as-GET (an empty payload, RFC 8555 §6.3)."""
        if self.payload == b"":
            return None
        try:
            return json.loads(self.payload, object_pairs_hook=_no_duplicates)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AcmeProblem("malformed", f"The JWS payload is not JSON ({exc}).") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate members (RFC 7515 §5.2 step 4 allows refusing; two parsers that
    keep different copies would check one header and act on another)."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate member {name!r}")
        out[name] = value
    return out


def _decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise AcmeProblem("malformed", f"The JWS {what} must be a base64url string.")
    try:
        return b64url_decode(value)
    except ParseError as exc:
        raise AcmeProblem("malformed", f"The JWS {what} is not base64url: {exc.what}") from None


def _check_signature(alg: str, key: PublicKey, data: bytes, signature: bytes) -> None:
    if alg in _EC_ALGS:
        crv, digest, size = _EC_ALGS[alg]
        if (
            not isinstance(key, ec.EllipticCurvePublicKey)
            or _CURVE_NAMES.get(key.curve.name) != crv
        ):
            raise AcmeProblem(
                "badSignatureAlgorithm",
                f"alg {alg} needs an EC {crv} key, and this account key is not one (RFC 7518 §3.4).",
                extra={"algorithms": list(ALGORITHMS)},
            )
        if len(signature) != 2 * size:
            raise AcmeProblem(
                "malformed",
                f"An {alg} signature is r||s, {2 * size} bytes (RFC 7518 §3.4), not {len(signature)}: "
                "was it sent in DER?",
            )
        der = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
        key.verify(der, data, ec.ECDSA(digest))
    elif alg == "RS256":
        if not isinstance(key, rsa.RSAPublicKey):
            raise AcmeProblem(
                "badSignatureAlgorithm",
                "alg RS256 needs an RSA key, and this account key is not one (RFC 7518 §3.3).",
                extra={"algorithms": list(ALGORITHMS)},
            )
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def verify(body: bytes, key_for_kid: Callable[[str], PublicKey | None]) -> Verified:
    """Check an ACME request body (RFC 8555 §6.2) and return what it says.

    Refused, each with its problem type: a body over :data:`MAX_JWS_BYTES` (413), not a
    flattened JWS object, an unprotected ``header`` or several ``signatures``, a
    protected header that is not base64url JSON, ``alg`` missing, ``none``, a MAC or
    unknown (``badSignatureAlgorithm``), an ``alg`` that does not fit the key, both or
    neither of ``jwk``/``kid``, an unknown ``kid`` (``accountDoesNotExist``), an
    unusable key (``badPublicKey``), ``crit`` members, no ``url``, and a signature that
    does not verify (``malformed``). ``key_for_kid`` maps an account URL to its key.
    """
    if len(body) > MAX_JWS_BYTES:
        raise AcmeProblem("malformed", f"The request body is over {MAX_JWS_BYTES} bytes.", 413)
    try:
        outer = json.loads(body, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AcmeProblem("malformed", f"The request body is not JSON ({exc}).") from None
    if not isinstance(outer, dict):
        raise AcmeProblem("malformed", "The request body must be a JSON object (a flattened JWS).")
    if "signatures" in outer or "header" in outer:
        raise AcmeProblem(
            "malformed",
            "ACME takes one signature and a protected header only: no 'signatures', "
            "no unprotected 'header' (RFC 8555 §6.2).",
        )
    missing = [m for m in ("protected", "payload", "signature") if m not in outer]
    if missing:
        raise AcmeProblem(
            "malformed", f"The JWS lacks its {missing[0]!r} member (RFC 7515 §7.2.2)."
        )
    protected_b64, payload_b64 = outer["protected"], outer["payload"]
    raw_header = _decode(protected_b64, "protected header")
    payload = _decode(payload_b64, "payload")
    signature = _decode(outer["signature"], "signature")
    try:
        header = json.loads(raw_header, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AcmeProblem("malformed", f"The protected header is not JSON ({exc}).") from None
    if not isinstance(header, dict):
        raise AcmeProblem("malformed", "The protected header must be a JSON object.")

    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        why = (
            "has no alg"
            if alg is None
            else 'uses alg "none", which means "not signed"'
            if alg == "none"
            else f"uses alg {alg!r}"
        )
        raise AcmeProblem(
            "badSignatureAlgorithm",
            f"The JWS {why}; this server accepts {', '.join(ALGORITHMS)} (RFC 8555 §6.2).",
            extra={"algorithms": list(ALGORITHMS)},
        )
    if "crit" in header:
        raise AcmeProblem(
            "malformed",
            "The protected header has 'crit' members this server does not understand (RFC 7515 §4.1.11).",
        )
    if not isinstance(header.get("url"), str):
        raise AcmeProblem("malformed", "The protected header has no 'url' (RFC 8555 §6.4).")
    has_jwk, has_kid = "jwk" in header, "kid" in header
    if has_jwk == has_kid:
        raise AcmeProblem(
            "malformed",
            "The protected header must carry exactly one of 'jwk' and 'kid' (RFC 8555 §6.2), "
            + ("not both." if has_jwk else "and it has neither."),
        )
    kid: str | None = None
    jwk: dict[str, Any] | None = None
    if has_jwk:
        jwk = header["jwk"]
        key = jwk_public_key(jwk)
        if isinstance(jwk, Mapping) and any(m in jwk for m in ("d", "p", "q", "dp", "dq", "qi")):
            raise AcmeProblem(
                "malformed", "The jwk contains private key members: never send those."
            )
    else:
        kid = header["kid"]
        if not isinstance(kid, str):
            raise AcmeProblem("malformed", "The 'kid' must be the account URL, a string.")
        found = key_for_kid(kid)
        if found is None:
            raise AcmeProblem("accountDoesNotExist", f"No account is known at {kid!r:.200}.")
        key = found
    try:
        _check_signature(alg, key, _signing_input(protected_b64, payload_b64), signature)
    except InvalidSignature:
        raise AcmeProblem(
            "malformed",
            "The JWS signature does not verify: the header or payload was changed after "
            "signing, or another key signed it.",
        ) from None
    return Verified(header, payload, alg, dict(jwk) if jwk is not None else None, kid, key)
