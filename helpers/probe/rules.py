"""The rules that cap the grade (or raise it to A+), as one readable table (introduced in notebook 08).

A score cannot express every weakness: a server with strong ciphers that also accepts
RC4 still leaks, and a perfect configuration behind an untrusted certificate protects
nobody. So, like SSL Labs, the grade ends with **rules**. Each :class:`Rule` has a test
that looks at a :class:`~helpers.probe.Scan` and returns its evidence (a short sentence)
or None, and a letter it imposes:

* **T** and **M** replace the letter: when an attacker can impersonate the server, the
  security of the connection does not matter;
* **F**, **C** and **B** cap it: the result is never better than the cap;
* **A+** rewards an A with nothing capped (HSTS with a long ``max-age``).

:data:`RULES` lists them in the order they are checked, each with the condition in
words, the attack it answers and where the rule comes from; :func:`rules_table` shows
them in a notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .attempts import _PRETTY

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .result import Scan

__all__ = ["Rule", "RULES", "RulesTable", "rules_table"]


@dataclass(frozen=True)
class Rule:
    """A rule that caps (or, for A+, raises) the grade when its test finds evidence."""

    id: str
    cap: str  # "T", "M", "F", "C", "B" or "A+"
    when: str  # the condition, in words
    why: str  # the attack or the reason
    source: str  # where the rule comes from
    test: Callable[[Scan], str | None] = field(repr=False, compare=False)


def _not_trusted(s: Scan) -> str | None:
    t = s.trust
    if t is not None and not t.ok and t.verify_code is not None and t.kind != "hostname-mismatch":
        return f"verification failed: {t.message} (code {t.verify_code})"
    return None


def _mismatch(s: Scan) -> str | None:
    t = s.trust
    if t is not None and t.kind == "hostname-mismatch":
        return f"{t.message} (code {t.verify_code})"
    return None


def _key_bits(s: Scan) -> tuple[str, int] | None:
    c = s.certificate
    return None if c is None else (c.key_type, c.key_bits)


def _tiny_cert_key(s: Scan) -> str | None:
    key = _key_bits(s)
    if key is not None and key[0] in ("RSA", "DSA") and key[1] < 1024:
        return f"the certificate's key is {key[0]} {key[1]} bits"
    return None


def _weak_cert_key(s: Scan) -> str | None:
    key = _key_bits(s)
    if key is None:
        return None
    kind, bits = key
    if (kind in ("RSA", "DSA") and 1024 <= bits < 2048) or (kind == "EC" and bits < 224):
        return f"the certificate's key is {kind} {bits} bits"
    return None


def _weak_signature(s: Scan) -> str | None:
    c = s.certificate
    if c is not None and c.signature_hash in ("sha1", "md5", "md2"):
        return f"the certificate is signed with {c.signature_hash.upper()}"
    return None


def _insecure_suites(s: Scan) -> str | None:
    bad = [x.name for x in s.suites if x.kex == "anon" or x.bits == 0]
    return f"accepts {', '.join(bad[:3])}" if bad else None


def _tiny_dh(s: Scan) -> str | None:
    small = [k for k in s.key_exchanges if k.kind == "DHE" and k.bits < 1024]
    return f"DHE with a {small[0].bits}-bit group" if small else None


def _no_tls12(s: Scan) -> str | None:
    if s.accepted_versions and not s.versions.get("TLSv1.2") and not s.versions.get("TLSv1.3"):
        return f"best version is {_PRETTY[s.accepted_versions[-1]]}"
    return None


def _rc4(s: Scan) -> str | None:
    bad = [x.name for x in s.suites if "rc4" in x.cipher.lower()]
    return f"accepts {', '.join(bad[:3])}" if bad else None


def _64bit_block(s: Scan) -> str | None:
    bad = [x.name for x in s.suites if "des" in x.cipher.lower() or "idea" in x.cipher.lower()]
    return f"accepts {', '.join(bad[:3])}" if bad else None


def _old_versions(s: Scan) -> str | None:
    old = [_PRETTY[v] for v in ("TLSv1", "TLSv1.1") if s.versions.get(v)]
    return f"accepts {' and '.join(old)}" if old else None


def _weak_dh(s: Scan) -> str | None:
    weak = [k for k in s.key_exchanges if k.kind == "DHE" and 1024 <= k.bits < 2048]
    return f"DHE with a {weak[0].bits}-bit group" if weak else None


def _no_forward_secrecy(s: Scan) -> str | None:
    if s.accepted_versions and not s.forward_secrecy:
        return "every accepted suite uses static RSA key transport"
    return None


def _hsts_long(s: Scan) -> str | None:
    if s.hsts is not None and s.hsts.max_age >= 15_768_000:
        return f"Strict-Transport-Security: {s.hsts.raw}"
    return None


#: Every rule, in the order they are checked. T and M replace the letter (the security
#: of the connection does not matter when an attacker can impersonate the server);
#: F, C and B cap it; A+ rewards an A with nothing capped.
RULES: tuple[Rule, ...] = (
    Rule(
        "not-trusted",
        "T",
        "the certificate chain does not verify (self-signed, unknown or untrusted root, expired...)",
        "an active attacker can present their own certificate (notebook 07)",
        "SSL Server Rating Guide: T grade",
        _not_trusted,
    ),
    Rule(
        "name-mismatch",
        "M",
        "the certificate does not name the host",
        "a certificate for another name proves nothing about this one (RFC 9525 §6, which replaced RFC 6125)",
        "SSL Server Rating Guide: M grade",
        _mismatch,
    ),
    Rule(
        "tiny-certificate-key",
        "F",
        "the certificate key is RSA/DSA < 1024 bits",
        "RSA-512 and RSA-768 have been factored in public (RSA-768 in 2009); anyone can forge",
        "SSL Labs, 2014 (Qualys, 'Stricter security requirements for 2014'): keys below 1024 bits get F",
        _tiny_cert_key,
    ),
    Rule(
        "sha1-signature",
        "F",
        "the certificate is signed with SHA-1 or MD5",
        "collisions forge signatures: MD5 rogue CA (2008), SHA-1 identical-prefix collision "
        "(SHAttered, 2017), SHA-1 chosen-prefix collision (Shambles, 2020)",
        "this course's choice (SSL Labs reports it as not trusted, T: browsers refuse SHA-1 "
        "certificates since 2017); F keeps the cause visible",
        _weak_signature,
    ),
    Rule(
        "anonymous-or-null",
        "F",
        "accepts anonymous (no authentication) or NULL (no encryption) suites",
        "anonymous suites invite a man in the middle; NULL sends plaintext",
        "SSL Server Rating Guide: zero scores",
        _insecure_suites,
    ),
    Rule(
        "tiny-dh",
        "F",
        "DHE with a group smaller than 1024 bits",
        "Logjam (2015): 512-bit export-grade groups fall in minutes",
        "SSL Labs 1.17 (May 2015)",
        _tiny_dh,
    ),
    Rule(
        "no-tls12",
        "C",
        "neither TLS 1.2 nor TLS 1.3 is supported",
        "only TLS 1.2+ offers AEAD suites; older versions rely on CBC constructions with known attacks",
        "SSL Labs, May 2015",
        _no_tls12,
    ),
    Rule(
        "rc4",
        "C",
        "accepts RC4 suites",
        "RC4 keystream biases recover plaintext; RFC 7465 (2015) prohibits RC4 in TLS",
        "SSL Labs, May 2015",
        _rc4,
    ),
    Rule(
        "64-bit-block",
        "C",
        "accepts 3DES or another 64-bit block cipher",
        "Sweet32 (2016): birthday collisions on 64-bit blocks after ~32 GB of traffic",
        "SSL Labs, 2017",
        _64bit_block,
    ),
    Rule(
        "tls-1.0-1.1",
        "B",
        "accepts TLS 1.0 or TLS 1.1",
        "deprecated by RFC 8996 (2021): SHA-1/MD5 in the handshake, CBC attacks (BEAST, POODLE-TLS)",
        "SSL Labs, January 2020",
        _old_versions,
    ),
    Rule(
        "weak-certificate-key",
        "B",
        "the certificate key is RSA/DSA 1024-2047 bits, or EC < 224 bits",
        "RSA-1024 is within reach of factoring by a well-funded attacker (NIST SP 800-131A "
        "disallowed it for signatures after 2013); browsers reject it in public certificates",
        "SSL Labs, 2014 (Qualys, 'Stricter security requirements for 2014'): keys below 2048 "
        "bits capped at B "
        "(the EC bound is this course's, from NIST SP 800-57)",
        _weak_cert_key,
    ),
    Rule(
        "weak-dh",
        "B",
        "DHE with a group smaller than 2048 bits",
        "Logjam (2015) broke 512-bit export groups by precomputation and estimated that one "
        "1024-bit group (e.g. Oakley group 2) is within a nation-state's reach",
        "SSL Labs, after Logjam (2015)",
        _weak_dh,
    ),
    Rule(
        "no-forward-secrecy",
        "B",
        "no accepted suite uses ephemeral (EC)DH and TLS 1.3 is not supported",
        "with static RSA, whoever later steals the server key decrypts every recorded session",
        "SSL Labs, 2018 (judged there with browser handshake simulations)",
        _no_forward_secrecy,
    ),
    Rule(
        "hsts",
        "A+",
        "grade A, nothing capped, and HSTS with max-age >= 6 months (15,768,000 s)",
        "HSTS stops SSL stripping (the browser never tries http:// again) and makes certificate "
        "errors non-bypassable (RFC 6797 §8.4, §12.1)",
        "SSL Labs A+ criteria",
        _hsts_long,
    ),
)


class RulesTable:
    """The rules as a table that fits a notebook: id, letter and condition in columns, the
    attack and the source folded into a ``<details>`` per row (open it to read them)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rules)

    def __repr__(self) -> str:
        return "\n".join(f"{r.id:22} {r.cap:2} {r.when}" for r in self.rules)

    def _repr_html_(self) -> str:
        from .report import _rules_html

        return _rules_html(self.rules)


def rules_table() -> RulesTable:
    """Every rule of :data:`RULES` as a table, for reading in a notebook."""
    return RulesTable(RULES)
