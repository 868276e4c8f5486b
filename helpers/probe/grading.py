"""The grade: category scores, the letter, then the rules (introduced in notebook 08).

:func:`grade` turns a :class:`~helpers.probe.Scan` into a :class:`Grade` in four steps,
and the :class:`Grade` keeps every intermediate result so a notebook can show how the
letter was reached:

1. score the three categories with the tables of ``scores`` (``explain`` says how each
   number was computed);
2. weight them into a total, 0 to 100 (the guide: a zero in any category makes the
   whole score zero), and read the letter off :data:`~helpers.probe.LETTERS`;
3. apply the F, C and B caps of ``rules``: the letter is never better than any of them;
4. give A+ to an A that nothing capped and whose HSTS rule fired, and finally replace
   the letter with M or T when the certificate does not protect the connection (T wins
   over M: an untrusted chain says nothing about names).

Simplified on purpose, compared with SSL Labs: no browser handshake simulations (the
forward-secrecy rule looks at the accepted suites instead), no vulnerability tests
(Heartbleed, ROBOT, renegotiation...), no A- for warnings (e.g. no secure renegotiation),
suites probed at one version only (SSL Labs caps RC4 at B when only old clients use it,
C with TLS 1.1+; here any RC4 is C), and SHA-1 certificates give F here (SSL Labs reports
them as not trusted, T, because browsers reject them). Certificate keys follow SSL Labs:
below 1024 bits F, below 2048 bits capped at B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConnectionProblem
from .attempts import _PRETTY
from .report import _grade_html
from .rules import RULES, Rule
from .scores import (
    CIPHER_SCORES,
    KEY_EXCHANGE_SCORES,
    PROTOCOL_SCORES,
    WEIGHTS,
    _bucket,
    letter_for,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .result import Scan

__all__ = ["Grade", "grade"]

_ORDER = ["F", "E", "D", "C", "B", "A", "A+"]


@dataclass
class Grade:
    """A letter and how it was reached (see :func:`grade`)."""

    target: str
    letter: str  # final: A+, A-F, T or M
    score: float  # weighted total, 0-100
    numeric_letter: str  # the letter the score alone gives
    capped_letter: str  # after F/C/B caps, before T/M/A+
    protocol: int
    key_exchange: int
    cipher: int
    applied: list[tuple[Rule, str]]  # (rule, evidence) for every rule that fired
    explain: dict[str, str]  # category -> how its score was computed

    @property
    def caps(self) -> list[str]:
        """The cap letters of the rules that fired (``["B", "C"]``), without T/M/A+."""
        return [r.cap for r, _ in self.applied if r.cap in ("F", "C", "B")]

    def __repr__(self) -> str:
        fired = ", ".join(r.id for r, _ in self.applied) or "none"
        return f"<Grade {self.letter} for {self.target}: score {self.score:.1f}, rules: {fired}>"

    def _repr_html_(self) -> str:
        return _grade_html(self)


def _weighted(protocol: int, key_exchange: int, cipher: int) -> float:
    if 0 in (protocol, key_exchange, cipher):
        return 0.0  # the guide: a zero in any category makes the whole score zero
    return (
        WEIGHTS["protocol"] * protocol
        + WEIGHTS["key_exchange"] * key_exchange
        + WEIGHTS["cipher"] * cipher
    )


def grade(result: Scan) -> Grade:
    """Grade a :class:`Scan` with the tables of ``scores`` and the :data:`RULES` of ``rules``."""
    versions = result.accepted_versions
    if not versions:
        raise ConnectionProblem(
            f"{result.target} accepted no TLS version, so there is nothing to grade.",
            "Check the host and port, and that the server speaks TLS.",
        )
    scores = [PROTOCOL_SCORES[v] for v in versions]
    protocol = round((max(scores) + min(scores)) / 2)
    explain = {
        "protocol": f"best {_PRETTY[versions[-1]]} = {max(scores)}, worst {_PRETTY[versions[0]]} = "
        f"{min(scores)}: ({max(scores)} + {min(scores)}) / 2 = {protocol}"
    }
    strengths: list[tuple[int, str]] = []
    if result.certificate is not None:
        c = result.certificate
        strengths.append(
            (c.rsa_bits, f"certificate {c.key_type} {c.key_bits} (≈ RSA {c.rsa_bits})")
        )
    for k in result.key_exchanges:
        if k.kind != "RSA":
            rated = "≈ RSA" if k.post_quantum is None else "classical part ≈ RSA"
            strengths.append((k.rsa_bits, f"{k.kind} {k.group} ({rated} {k.rsa_bits})"))
    if any(s.kex == "anon" for s in result.suites):
        key_exchange = 0
        explain["key_exchange"] = "anonymous key exchange accepted: 0"
    elif strengths:
        weakest = min(strengths)
        key_exchange = _bucket(weakest[0], KEY_EXCHANGE_SCORES)
        explain["key_exchange"] = f"weakest: {weakest[1]} → {key_exchange}"
    else:
        key_exchange = 0
        explain["key_exchange"] = "no key exchange could be observed: 0"
    bits = [s.bits for s in result.suites]
    if result.tls13_bits is not None:
        bits.append(result.tls13_bits)
    if bits:
        strong, weak = _bucket(max(bits), CIPHER_SCORES), _bucket(min(bits), CIPHER_SCORES)
        cipher = round((strong + weak) / 2)
        explain["cipher"] = (
            f"strongest {max(bits)} bits = {strong}, weakest {min(bits)} bits = {weak}: "
            f"({strong} + {weak}) / 2 = {cipher}"
        )
    else:
        cipher = 0
        explain["cipher"] = "no cipher suite observed: 0"
    score = _weighted(protocol, key_exchange, cipher)
    numeric = letter_for(score)
    applied = [(rule, evidence) for rule in RULES if (evidence := rule.test(result)) is not None]
    capped = numeric
    for rule, _ in applied:
        if rule.cap in ("F", "C", "B") and _ORDER.index(rule.cap) < _ORDER.index(capped):
            capped = rule.cap
    letter = capped
    if any(r.cap == "A+" for r, _ in applied):
        if capped == "A" and not any(r.cap in ("F", "C", "B") for r, _ in applied):
            letter = "A+"
        else:
            applied = [(r, e) for r, e in applied if r.cap != "A+"]
    for special in ("M", "T"):  # T wins over M: an untrusted chain says nothing about names
        if any(r.cap == special for r, _ in applied):
            letter = special
    return Grade(
        result.target,
        letter,
        score,
        numeric,
        capped,
        protocol,
        key_exchange,
        cipher,
        applied,
        explain,
    )
