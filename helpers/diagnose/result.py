"""The verdict on one connection: :class:`Diagnosis` (introduced in notebook 02).

:func:`~helpers.diagnose.explain` and :func:`~helpers.diagnose.check` both return a
:class:`Diagnosis`: the kind and its :data:`~.advice.ADVICE`, the raw facts (exception
classes, OpenSSL's message and verify code) and what the connection showed (version,
cipher, the certificates the server sent). Its ``detail`` reads the chain for the one or
two facts that make the kind concrete ("expired on ... (12 days ago)", "the certificate
names ..."); the small certificate readers at the top are all that takes. ``print()`` gives
plain text; a notebook shows the HTML card of :mod:`.card`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from .advice import ADVICE
from .card import _diagnosis_html

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; the package supports 3.10)


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if values:
        return str(values[0].value)
    return name.rfc4514_string() or "(empty name)"


def _san(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in ext.value]


def _not_after(cert: x509.Certificate) -> _dt.datetime:
    return cert.not_valid_after_utc


def _not_before(cert: x509.Certificate) -> _dt.datetime:
    return cert.not_valid_before_utc


def _is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _key_text(cert: x509.Certificate) -> str:
    key = cert.public_key()
    size = getattr(key, "key_size", None)
    kind = type(key).__name__.replace("_", "").replace("PublicKey", "")
    return f"{kind} {size} bits" if size else kind


def _hash_name(cert: x509.Certificate) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - an algorithm cryptography does not know
        return cert.signature_algorithm_oid.dotted_string
    return algorithm.name.upper() if algorithm else "no separate hash (EdDSA)"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _eku(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return []
    return [getattr(oid, "_name", None) or oid.dotted_string for oid in ext.value]


@dataclass
class Diagnosis:
    """The verdict on one TLS connection: what happened, why, and what to do.

    ``ok`` and ``kind`` are the verdict (``kind`` is ``"ok"`` on success, else a key of
    :data:`ADVICE`); ``explanation`` and ``fix`` come from that table and ``detail`` adds
    what this particular connection showed (dates, names, how many certificates were
    sent). ``message``, ``exception``, ``cause`` and ``verify_code`` are the raw facts:
    the outermost exception you would catch, the one inside it that decided the verdict,
    and OpenSSL's ``X509_V_ERR_*`` number. ``chain`` holds the certificates exactly as the
    server sent them, leaf first; ``chain_source`` says whether they came from the
    verified connection or from the non-verifying probe that reads them after a failure.
    """

    target: str
    ok: bool
    kind: str
    via: str = "ssl"
    host: str | None = None
    port: int | None = None
    message: str = ""
    exception: str | None = None
    cause: str | None = None
    exceptions: tuple[str, ...] = ()
    verify_code: int | None = None
    verify_message: str | None = None
    version: str | None = None
    cipher: str | None = None
    chain: list[x509.Certificate] = field(default_factory=list)
    chain_source: str = ""
    status: int | None = None
    elapsed: float | None = None
    notes: list[str] = field(default_factory=list)
    #: The exception object itself (``None`` when ``ok``), for ``raise d.error`` or
    #: ``Expect.matches(d.error)``.
    error: BaseException | None = field(default=None, repr=False, compare=False)

    # ---- the texts
    @property
    def explanation(self) -> str:
        """What this kind of failure means (from :data:`ADVICE`)."""
        return ADVICE.get(self.kind, ADVICE["error"]).explanation

    @property
    def fix(self) -> str:
        """What a learner or an admin should do about it (from :data:`ADVICE`)."""
        return ADVICE.get(self.kind, ADVICE["error"]).fix

    @property
    def leaf(self) -> x509.Certificate | None:
        """The server's own certificate, if we saw it."""
        return self.chain[0] if self.chain else None

    @property
    def detail(self) -> str:
        """One or two sentences about *this* connection, read from the chain."""
        return _detail(self)

    @property
    def headline(self) -> str:
        """``OK`` or ``FAILED: expired`` plus what was checked."""
        verdict = "OK" if self.ok else f"FAILED: {self.kind}"
        return f"{verdict} - {self.target} (via {self.via})"

    def __str__(self) -> str:
        lines = [self.headline]
        if not self.ok:
            lines.append(f"  raw:  {self.exception or ''}: {self.message}".rstrip())
            if self.verify_code is not None:
                lines.append(f"  verify_code: {self.verify_code} ({self.verify_message})")
        if self.version:
            lines.append(f"  TLS:  {self.version}, {self.cipher}")
        lines.append(f"  why:  {self.explanation}")
        if self.detail:
            lines.append(f"  seen: {self.detail}")
        lines.append(f"  fix:  {self.fix}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for i, cert in enumerate(self.chain):
            lines.append(f"  [{i}] {_cn(cert.subject)}  <-  issued by {_cn(cert.issuer)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _diagnosis_html(self)


def _detail(d: Diagnosis) -> str:
    leaf = d.leaf
    if leaf is None:
        if d.kind == "dns" and d.host:
            return f"No address for {d.host!r}."
        return ""
    now = _dt.datetime.now(_UTC)
    if d.kind == "expired":
        late = [c for c in d.chain if _not_after(c) < now]
        if late:
            c = late[0]
            days = (now - _not_after(c)).days
            return f"{_cn(c.subject)!r} expired on {_not_after(c):%Y-%m-%d %H:%M} UTC ({days} days ago)."
    if d.kind == "not-yet-valid":
        early = [c for c in d.chain if _not_before(c) > now]
        if early:
            c = early[0]
            return f"{_cn(c.subject)!r} becomes valid on {_not_before(c):%Y-%m-%d %H:%M} UTC."
    if d.kind == "hostname-mismatch":
        names = _san(leaf)
        listed = (
            ", ".join(names) if names else f"no subjectAltName at all (CN {_cn(leaf.subject)!r})"
        )
        said = f"You asked for {d.host!r}; the certificate names {listed}."
        if not names:
            said += (
                " Python's ssl module still falls back to the Common Name; requests and "
                "browsers do not (RFC 9110 §4.3.4; RFC 9525 dropped the fallback that the "
                "older RFC 6125 §6.4.4 allowed)."
            )
        return said
    if d.kind in ("unknown-issuer", "untrusted-root", "self-signed"):
        top = d.chain[-1]
        sent = f"The server sent {len(d.chain)} certificate{'s' if len(d.chain) != 1 else ''}"
        if d.kind == "unknown-issuer" and len(d.chain) == 1 and not _is_self_issued(leaf):
            return (
                f"{sent}: only its own, issued by {_cn(leaf.issuer)!r}. Roots do not sign "
                "server certificates directly (CA/Browser Forum Baseline Requirements "
                "§6.1.7), so a lone certificate that is not self-signed almost always means "
                "the intermediate was left out: an incomplete chain."
            )
        if d.kind == "unknown-issuer":
            return f"{sent}; nobody here knows {_cn(top.issuer)!r}, the issuer of the last one."
        return f"{sent}, ending with {_cn(top.subject)!r}, which is not in your trust store."
    if d.kind == "revoked":
        return f"Serial number {leaf.serial_number:#x} is on the CRL you loaded."
    if d.kind == "weak-key":
        sizes = [f"{_cn(c.subject)!r}: {_key_text(c)}" for c in d.chain]
        return "Keys in the chain: " + "; ".join(sizes) + "."
    if d.kind == "weak-signature":
        sigs = [f"{_cn(c.subject)!r} signed with {_hash_name(c)}" for c in d.chain]
        return "; ".join(sigs) + "."
    if d.kind == "invalid-ca":
        signers = [c for c in d.chain[1:] if not _is_ca(c)]
        if signers:
            return f"{_cn(signers[0].subject)!r} signed the certificate below it, but its basicConstraints say cA=FALSE."
    if d.kind == "wrong-purpose":
        return f"The certificate's extendedKeyUsage: {', '.join(_eku(leaf)) or 'none'}."
    if d.ok and d.version:
        return f"{d.version} with {d.cipher}; the server's certificate is for {', '.join(_san(leaf)) or _cn(leaf.subject)}."
    return ""
