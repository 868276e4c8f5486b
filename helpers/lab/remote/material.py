"""Defence in depth: every certificate and CRL in a signed description must be the lab's (notebook 02).

:mod:`helpers.lab.remote.signing` already proves that the description as a whole comes
from the lab whose CA the student pinned. This module checks each file in it once more,
as a relying party checks what a CA publishes, so that one bug or one careless change in
the signing code is not enough to hand a student forged material:

* each scenario's **chain** must lead to the pinned CA: every certificate signed by the
  next one, the last one signed by the CA or by an intermediate that an already checked
  chain proved (RFC 5280 §6.1). Scenarios whose chain is deliberately *not* the lab's
  are told apart by their recipe (:class:`~helpers.lab.scenarios.CertRecipe`
  ``issuer``: ``"self"``, ``"untrusted"``), not by a list of names;
* the **CRL** must be signed by the lab CA or one of those intermediates (RFC 5280
  §6.3.3), so a forged "nothing is revoked" cannot pass;
* the **client certificate**, when shared, must lead to the CA too, and its key must
  match it.

:func:`checked_material` returns the bytes to write; nothing is written until every
check has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ... import pki
from ...errors import LabError
from ...pki.panics import panics_as
from ..scenarios import Scenario

#: ``CertRecipe.issuer`` values whose certificates the lab CA did *not* sign, on purpose.
FOREIGN_ISSUERS = frozenset({"self", "untrusted"})

_FORGED = (
    "Do not use it: ask the teacher (someone in the room may be answering in the teacher's place)."
)


@dataclass(frozen=True)
class Material:
    """What a joined lab writes, every piece checked against the pinned CA."""

    ca_pem: bytes
    crl_pem: bytes
    chains: dict[str, bytes]
    client_chain: bytes | None
    client_key: pki.PrivateKey | None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Is ``cert`` directly issued by ``issuer`` (name and signature)?"""
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass  # cryptography refuses SHA-1 here (the lab's sha1 scenario): check by hand
    if cert.issuer != issuer.subject:
        return False
    try:
        algorithm = cert.signature_hash_algorithm
        key = issuer.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _anchored(chain: list[x509.Certificate], issuers: list[x509.Certificate]) -> bool:
    """Each certificate signed by the next, the last one by (or equal to) a known issuer."""
    if not chain:
        return False
    if not all(_signed_by(chain[i], chain[i + 1]) for i in range(len(chain) - 1)):
        return False
    top = chain[-1]
    return top in issuers or any(_signed_by(top, issuer) for issuer in issuers)


def _pem(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _chain(pem: str | None) -> list[x509.Certificate]:
    if pem is None:
        return []
    try:
        return pki.load_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeError):
        return []


def checked_material(
    data: Mapping[str, Any], ca: x509.Certificate, scenarios: Mapping[str, Scenario], url: str
) -> Material:
    """The CA, CRL, chains and client certificate of ``data``, each checked against ``ca``.

    Every byte here came over the network, and cryptography parses it in Rust. A Rust
    *panic* on hostile input is a ``BaseException`` that no ``except ValueError`` below
    catches (``helpers/pki/panics.py``): it becomes the same one-sentence
    :class:`~helpers.errors.LabError` as any other refusal, and nothing is written.
    """
    with panics_as(LabError, f"The lab description from {url} could not be checked", _FORGED):
        return _checked_material(data, ca, scenarios, url)


def _checked_material(
    data: Mapping[str, Any], ca: x509.Certificate, scenarios: Mapping[str, Scenario], url: str
) -> Material:
    raw = data.get("chains_pem")
    raw = raw if isinstance(raw, dict) else {}
    chains = {name: _chain(_pem(raw, name)) for name in scenarios}
    for name, chain in chains.items():
        if not chain:
            raise LabError(f"The lab description from {url} has no chain for {name!r}.", _FORGED)
    # Chains that should be the lab's, longest first: a full chain proves the intermediate
    # that a leaf-only chain ("incomplete-chain") then leads to.
    issuers = [ca]
    pending = sorted(
        (n for n in chains if scenarios[n].cert.issuer not in FOREIGN_ISSUERS),
        key=lambda n: -len(chains[n]),
    )
    while pending:
        done = [n for n in pending if _anchored(chains[n], issuers)]
        if not done:
            raise LabError(
                f"The chain for {pending[0]!r} from {url} does not lead to the lab CA.", _FORGED
            )
        for name in done:
            issuers += [c for c in chains[name][1:] if _is_ca(c) and c not in issuers]
        pending = [n for n in pending if n not in done]
    crl_pem = _pem(data, "crl_pem")
    try:
        crl = x509.load_pem_x509_crl((crl_pem or "").encode("ascii"))
    except (ValueError, UnicodeError):
        raise LabError(f"The lab description from {url} carries no valid CRL.", _FORGED) from None
    if not any(
        crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        for issuer in issuers
    ):
        raise LabError(f"The CRL from {url} is not signed by the lab CA.", _FORGED)
    client_chain = client_key = None
    cert_pem, key_pem = _pem(data, "client_cert_pem"), _pem(data, "client_key_pem")
    if cert_pem is not None and key_pem is not None:
        client = _chain(cert_pem)
        if not _anchored(client, issuers):
            raise LabError(f"The client certificate from {url} is not the lab's.", _FORGED)
        try:
            client_key = pki.load_private_key(key_pem.encode("ascii"))
            pki.ensure_key_matches(client[0], client_key)
        except (ValueError, UnicodeError):
            raise LabError(
                f"The client key from {url} does not match its certificate.", _FORGED
            ) from None
        client_chain = pem_of(client)
    return Material(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        crl_pem=crl.public_bytes(serialization.Encoding.PEM),
        chains={name: pem_of(chain) for name, chain in chains.items()},
        client_chain=client_chain,
        client_key=client_key,
    )


def pem_of(chain: list[x509.Certificate]) -> bytes:
    """The certificates as PEM, in order: what was checked is exactly what is written."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
