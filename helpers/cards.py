"""Certificates and result tables as HTML cards (introduced in notebook 03).

Theory of operation
-------------------
Jupyter asks every displayed object for ``_repr_html_()`` and renders the HTML it
returns. :class:`CertificateCard` turns an :class:`x509.Certificate` into the kind of
view a browser's certificate viewer shows (who, issued by whom, for which names, valid
when, with which key, fingerprint) and :class:`ChainCard` stacks several of them from
leaf to root. :class:`Table` is the small generic view other modules use for results.

:func:`describe` extracts the facts once, as a plain ``dict``; the cards only lay them
out. Tests and other modules use the dict, so what you see is what is checked.

Rendering rules: inline CSS only (no JavaScript, no stylesheet), every value passes
through :func:`html.escape` (a certificate's subject is attacker-controlled text; an
unescaped ``<script>`` in a CN would run in the notebook), and every box sets its own
foreground *and* background colour, so the card reads the same in light and dark
JupyterLab themes.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .acme.ari import RENEW_AT

__all__ = ["ChainCard", "CertificateCard", "Table", "describe"]

# RENEW_AT: "expiring soon" once this fraction of the lifetime has passed: ACME clients
# renew at about two thirds (certbot: 30 days before the end of a 90-day certificate), so
# a certificate still in use after that was not renewed. Relative, so a 6-day certificate
# is not "expiring soon" the day it is issued. Defined once, in helpers/acme/ari.py; the
# expiry plots (helpers/plots/status.py) use the same rule.

#: The old absolute threshold, kept for code that imports it; no longer used here.
WARN_DAYS = 30
#: The status of a certificate within its dates. Not "valid": only the dates were checked.
IN_DATE = "in date"

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; the package supports 3.10)

# Neutral palette with explicit backgrounds: readable on light and dark themes alike.
_FG, _MUTED, _BG, _BORDER, _TRACK = "#1f2328", "#57606a", "#f6f8fa", "#d0d7de", "#e3e6ea"
_GREEN, _AMBER, _RED = "#1a7f37", "#b35900", "#cf222e"
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;"
_MONO = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;"

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "TLS server",
    ExtendedKeyUsageOID.CLIENT_AUTH: "TLS client",
    ExtendedKeyUsageOID.CODE_SIGNING: "code signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "e-mail",
    ExtendedKeyUsageOID.TIME_STAMPING: "time stamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP signing",
}
_KEY_USAGE_FIELDS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def _cert_of(obj: Any) -> x509.Certificate:
    """Accept a certificate or anything holding one in ``.cert`` (pki.Leaf, pki.CA)."""
    cert = getattr(obj, "cert", obj)
    if not isinstance(cert, x509.Certificate):
        raise TypeError(f"expected an x509.Certificate (or a Leaf/CA), got {type(obj).__name__}")
    return cert


def _ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _utc_now(now: _dt.datetime | None) -> _dt.datetime:
    """``now`` as an aware UTC datetime; naive values are taken to be UTC (like pki)."""
    if now is None:
        return _dt.datetime.now(_UTC)
    return now.replace(tzinfo=_UTC) if now.tzinfo is None else now.astimezone(_UTC)


def _key_facts(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    """(key type, size in bits, curve name)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, None, None


def _self_signed(cert: x509.Certificate) -> bool:
    """Issuer == subject *and* the signature verifies with the certificate's own key."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # invalid signature, unsupported algorithm: not self-signed
        return False
    return True


def _signature_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    name = getattr(oid, "_name", None)
    return name if name and name != "Unknown OID" else oid.dotted_string


def describe(cert: Any, *, now: _dt.datetime | None = None) -> dict[str, Any]:
    """The facts a :class:`CertificateCard` shows, as a plain dict.

    Keys: ``subject``, ``subject_cn``, ``issuer``, ``issuer_cn``, ``sans`` (list of
    str), ``san_entries`` (list of ``(kind, value)``), ``serial`` (hex), ``version``,
    ``not_before``, ``not_after`` (aware UTC datetimes), ``lifetime_days``,
    ``days_left`` (negative once expired), ``elapsed`` (0..1), ``status`` ("in date",
    "expiring soon", "expired", "not yet valid": the dates only, see below), ``key_type``,
    ``key_size``,
    ``curve``, ``key`` (e.g. "EC P-256"), ``signature_algorithm``,
    ``sha256_fingerprint`` (colon hex), ``spki_pin`` (``sha256//`` + base64 of the SHA-256
    of the SubjectPublicKeyInfo: the pin that survives a renewal with the same key),
    ``is_ca``, ``path_length``, ``self_signed``, ``key_usage``, ``extended_key_usage``
    (lists of str).

    ``status`` says where ``now`` falls between notBefore and notAfter (RFC 5280
    §4.1.2.5), nothing more. A self-signed, wrongly named or untrusted certificate is
    still "in date": whether it *verifies* is a question for a trust store and a host
    name, which a card does not have. So the card never calls a certificate "valid"
    (helpers/plots/status.py uses the same words).
    """
    cert = _cert_of(cert)
    now = _utc_now(now)
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    lifetime = (na - nb).total_seconds()
    days_left = math.floor((na - now).total_seconds() / 86400)
    if now < nb:
        status = "not yet valid"
    elif now > na:
        status = "expired"
    elif lifetime > 0 and (now - nb).total_seconds() >= RENEW_AT * lifetime:
        status = "expiring soon"
    else:
        status = IN_DATE
    elapsed = 0.0 if lifetime <= 0 else min(1.0, max(0.0, (now - nb).total_seconds() / lifetime))

    san = _ext(cert, x509.SubjectAlternativeName)
    entries: list[tuple[str, str]] = []
    for g in san or ():
        if isinstance(g, x509.DNSName):
            entries.append(("DNS", g.value))
        elif isinstance(g, x509.IPAddress):
            entries.append(("IP", str(g.value)))
        elif isinstance(g, x509.RFC822Name):
            entries.append(("email", g.value))
        elif isinstance(g, x509.UniformResourceIdentifier):
            entries.append(("URI", g.value))
        else:
            entries.append((type(g).__name__, str(g.value)))

    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    key_type, key_size, curve = _key_facts(cert)
    if curve:
        key_text = f"EC {_CURVE_NAMES.get(curve, curve)}"
    elif key_type in ("RSA", "DSA") and key_size:
        key_text = f"{key_type} {key_size} bits"
    else:
        key_text = key_type
    return {
        "subject": cert.subject.rfc4514_string(),
        "subject_cn": _cn(cert.subject),
        "issuer": cert.issuer.rfc4514_string(),
        "issuer_cn": _cn(cert.issuer),
        "sans": [value for _, value in entries],
        "san_entries": entries,
        "serial": f"{cert.serial_number:x}",
        "version": cert.version.name,
        "not_before": nb,
        "not_after": na,
        "lifetime_days": round(lifetime / 86400, 2),
        "days_left": days_left,
        "elapsed": elapsed,
        "status": status,
        "key_type": key_type,
        "key_size": key_size,
        "curve": curve,
        "key": key_text,
        "signature_algorithm": _signature_name(cert),
        "sha256_fingerprint": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "spki_pin": _spki_pin(cert),
        "is_ca": bool(bc and bc.ca),
        "path_length": bc.path_length if bc else None,
        "self_signed": _self_signed(cert),
        "key_usage": [
            label
            for attr, label in _KEY_USAGE_FIELDS
            if ku is not None and getattr(ku, attr, False)
        ],
        "extended_key_usage": [_EKU_NAMES.get(o, o.dotted_string) for o in (eku or ())],
    }


def _spki_pin(cert: x509.Certificate) -> str:
    """``sha256//<base64>``: the SHA-256 of the public key (SPKI), as curl's --pinnedpubkey takes."""
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return "sha256//" + base64.b64encode(digest.finalize()).decode()


def _status_colour(status: str) -> str:
    return {IN_DATE: _GREEN, "expiring soon": _AMBER}.get(status, _RED)


def _days_text(d: Mapping[str, Any], now: _dt.datetime) -> str:
    if d["status"] == "not yet valid":
        days = math.ceil((d["not_before"] - now).total_seconds() / 86400)
        return f"not valid yet: starts in {days} day{'s' if days != 1 else ''}"
    if d["status"] == "expired":
        ago = (now - d["not_after"]).days
        return "expired today" if ago == 0 else f"expired {ago} day{'s' if ago != 1 else ''} ago"
    left = d["days_left"]
    return f"{left} day{'s' if left != 1 else ''} left"


def _role(d: Mapping[str, Any]) -> str:
    if d["is_ca"]:
        return "root CA" if d["self_signed"] else "intermediate CA"
    return "self-signed leaf" if d["self_signed"] else "leaf"


def _badge(text: str, colour: str) -> str:
    return (
        f'<span style="display:inline-block;padding:0 6px;margin-left:6px;border-radius:10px;'
        f'border:1px solid {colour};color:{colour};background:#ffffff;font-size:11px;">'
        f"{html.escape(text)}</span>"
    )


def _bar(fraction: float, colour: str, width: str = "100%") -> str:
    pct = f"{fraction * 100:.1f}%"
    return (
        f'<div style="width:{width};height:6px;background:{_TRACK};border-radius:3px;'
        f'overflow:hidden;margin:3px 0;"><div style="width:{pct};height:6px;'
        f'background:{colour};"></div></div>'
    )


def _row(label: str, value_html: str) -> str:
    cell = f"padding:3px 8px;vertical-align:top;background:{_BG};border:none;text-align:left;"
    return (
        f'<tr style="background:{_BG};">'
        f'<td style="{cell}color:{_MUTED};white-space:nowrap;width:9em;">{html.escape(label)}</td>'
        f'<td style="{cell}color:{_FG};">{value_html}</td></tr>'
    )


class CertificateCard:
    """A browser-style view of one certificate. ``now`` fixes the clock (for tests)."""

    def __init__(self, cert: Any, *, now: _dt.datetime | None = None) -> None:
        self.cert = _cert_of(cert)
        self.now = _utc_now(now)
        self.facts = describe(self.cert, now=self.now)

    def _repr_html_(self) -> str:
        d, e = self.facts, html.escape
        colour = _status_colour(d["status"])
        title = d["subject_cn"] or (d["sans"][0] if d["sans"] else d["subject"]) or "(no subject)"
        badges = _badge(_role(d), _MUTED)
        if d["is_ca"]:
            pl = d["path_length"]
            badges += _badge("CA" + (f", pathlen {pl}" if pl is not None else ""), _MUTED)
        badges += _badge(d["status"], colour)
        if d["san_entries"]:
            names = " ".join(
                f'<span style="{_MONO}display:inline-block;margin:1px 4px 1px 0;padding:0 4px;'
                f'background:#ffffff;color:{_FG};border:1px solid {_BORDER};border-radius:4px;">'
                f'<span style="color:{_MUTED};">{e(kind)}:</span>{e(value)}</span>'
                for kind, value in d["san_entries"]
            )
        else:
            names = (
                f'<span style="color:{_RED};">no subjectAltName: clients that ignore the '
                f"Common Name (browsers, RFC 9525) will reject this certificate</span>"
            )
        validity = (
            f"{e(d['not_before'].strftime('%Y-%m-%d %H:%M'))} &rarr; "
            f"{e(d['not_after'].strftime('%Y-%m-%d %H:%M'))} UTC"
            f"{_bar(d['elapsed'], colour)}"
            f'<span style="color:{colour};font-weight:600;">{e(_days_text(d, self.now))}</span>'
        )
        usage = e(", ".join(d["key_usage"]) or "(none)")
        if d["extended_key_usage"]:
            usage += " &middot; " + e(", ".join(d["extended_key_usage"]))
        fp = d["sha256_fingerprint"]
        rows = [
            _row("Subject", e(d["subject"] or "(empty)")),
            _row("Issuer", e(d["issuer"] or "(empty)")),
            _row("Names (SAN)", names),
            _row("Validity", validity),
            _row("Public key", e(d["key"])),
            _row("Signature", e(d["signature_algorithm"])),
            _row("Key usage", usage),
            _row("Serial", f'<span style="{_MONO}">{e(d["serial"])}</span>'),
            _row(
                "SHA-256",
                f'<span style="{_MONO}word-break:break-all;">{e(fp)}</span>',
            ),
            _row(
                "SPKI pin",
                f'<span style="{_MONO}word-break:break-all;">{e(d["spki_pin"])}</span>',
            ),
            _row(
                "CA / self-signed",
                f"{'yes' if d['is_ca'] else 'no'} / {'yes' if d['self_signed'] else 'no'}",
            ),
        ]
        return (
            f'<div style="{_FONT}color:{_FG};background:{_BG};border:1px solid {_BORDER};'
            f"border-left:4px solid {colour};border-radius:6px;padding:8px 10px;"
            f'max-width:680px;margin:4px 0;">'
            f'<div style="font-size:15px;font-weight:600;color:{_FG};margin-bottom:4px;">'
            f"&#128274; {e(title)}{badges}</div>"
            f'<table style="border-collapse:collapse;margin:0;background:{_BG};width:100%;">'
            f"{''.join(rows)}</table></div>"
        )

    def __repr__(self) -> str:
        d = self.facts
        name = d["subject_cn"] or ", ".join(d["sans"]) or d["subject"]
        return (
            f"<CertificateCard {name!r} issued by {d['issuer_cn'] or d['issuer']!r}, "
            f"{_days_text(d, self.now)}>"
        )

    def __str__(self) -> str:
        d = self.facts
        names = ", ".join(f"{k}:{v}" for k, v in d["san_entries"]) or "(no SAN)"
        lines = [
            ("Subject", d["subject"]),
            ("Issuer", d["issuer"]),
            ("Names", names),
            (
                "Validity",
                f"{d['not_before']:%Y-%m-%d %H:%M} -> {d['not_after']:%Y-%m-%d %H:%M} UTC"
                f" ({_days_text(d, self.now)})",
            ),
            ("Public key", d["key"]),
            ("Signature", d["signature_algorithm"]),
            ("SHA-256", d["sha256_fingerprint"]),
            ("SPKI pin", d["spki_pin"]),
            ("CA", "yes" if d["is_ca"] else "no"),
            ("Self-signed", "yes" if d["self_signed"] else "no"),
        ]
        return "\n".join(f"{k:<12} {v}" for k, v in lines)


def _chain_certs(certs: Any) -> list[x509.Certificate]:
    if isinstance(certs, x509.Certificate):
        return [certs]
    if hasattr(certs, "chain") and not isinstance(certs, (list, tuple)):
        out = list(certs.chain)
        issuer = getattr(certs, "issuer", None)
        root = getattr(issuer, "root", None)
        if root is not None and root.cert not in out:
            out.append(root.cert)  # show the trust anchor too, although servers omit it
        return out
    return [_cert_of(c) for c in certs]


class ChainCard:
    """Several certificates, leaf first, one compact row each.

    Pass a list of certificates (or Leaf/CA objects), or a ``Leaf``: its chain plus
    the root it leads to. A red note marks any link where a certificate's issuer is not
    the subject of the next one (a wrongly ordered or incomplete chain).
    """

    def __init__(self, certs: Iterable[Any] | Any, *, now: _dt.datetime | None = None) -> None:
        self.certs = _chain_certs(certs)
        self.now = _utc_now(now)
        self.facts = [describe(c, now=self.now) for c in self.certs]

    def _repr_html_(self) -> str:
        e = html.escape
        parts = []
        for i, (cert, d) in enumerate(zip(self.certs, self.facts, strict=True)):
            colour = _status_colour(d["status"])
            title = d["subject_cn"] or (d["sans"][0] if d["sans"] else d["subject"])
            names = ", ".join(d["sans"][:4]) + (" …" if len(d["sans"]) > 4 else "")
            parts.append(
                f'<div style="background:{_BG};color:{_FG};border:1px solid {_BORDER};'
                f'border-left:4px solid {colour};border-radius:6px;padding:6px 10px;">'
                f'<div><span style="font-weight:600;">{e(title or "(no subject)")}</span>'
                f"{_badge(_role(d), _MUTED)}{_badge(d['status'], colour)}</div>"
                f'<div style="color:{_MUTED};">{e(names) if names else "no SAN"} &middot; '
                f"{e(d['key'])} &middot; {e(d['signature_algorithm'])}</div>"
                f"{_bar(d['elapsed'], colour, '60%')}"
                f'<div style="color:{colour};">{e(_days_text(d, self.now))} '
                f'<span style="{_MONO}color:{_MUTED};">sha256 '
                f"{e(d['sha256_fingerprint'][:23])}…</span></div></div>"
            )
            if i + 1 < len(self.certs):
                nxt = self.certs[i + 1]
                if cert.issuer == nxt.subject:
                    link = f'<span style="color:{_MUTED};">&darr; issued by</span>'
                else:
                    link = (
                        f'<span style="color:{_RED};font-weight:600;">&darr; &#9888; issuer '
                        f"{e(d['issuer'])} is not the next certificate</span>"
                    )
                parts.append(f'<div style="padding:2px 0 2px 16px;background:{_BG};">{link}</div>')
        return (
            f'<div style="{_FONT}color:{_FG};background:{_BG};padding:6px;border-radius:6px;'
            f'max-width:680px;">{"".join(parts)}</div>'
        )

    def __repr__(self) -> str:
        names = " -> ".join(repr(d["subject_cn"] or d["subject"]) for d in self.facts)
        return f"<ChainCard {names}>"

    def __str__(self) -> str:
        return "\n".join(
            f"{i}: {d['subject_cn'] or d['subject']} ({_role(d)}, {_days_text(d, self.now)})"
            for i, d in enumerate(self.facts)
        )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, _dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


class Table:
    """A small result table: ``Table([{"host": ..., "ok": True}, ...])``.

    ``columns`` picks and orders columns (default: every key, in order of first
    appearance). Every cell is escaped; ``None`` shows as empty, booleans as yes/no.
    """

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        title: str | None = None,
    ) -> None:
        self.rows = [dict(r) for r in rows]
        if columns is None:
            columns = list(dict.fromkeys(k for r in self.rows for k in r))
        self.columns = list(columns)
        self.title = title

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_html_(self) -> str:
        e = html.escape
        cell = f"padding:3px 10px;border:none;border-bottom:1px solid {_BORDER};text-align:left;"
        head = "".join(
            f'<th style="{cell}color:{_FG};background:{_TRACK};font-weight:600;">{e(c)}</th>'
            for c in self.columns
        )
        body = "".join(
            f'<tr style="background:{_BG};">'
            + "".join(
                f'<td style="{cell}color:{_FG};background:{_BG};">{e(_cell_text(r.get(c)))}</td>'
                for c in self.columns
            )
            + "</tr>"
            for r in self.rows
        )
        caption = (
            f'<caption style="text-align:left;font-weight:600;color:{_FG};background:{_BG};'
            f'padding:4px 10px;caption-side:top;">{e(self.title)}</caption>'
            if self.title
            else ""
        )
        return (
            f'<table style="{_FONT}border-collapse:collapse;color:{_FG};background:{_BG};'
            f'border:1px solid {_BORDER};margin:4px 0;">{caption}'
            f'<thead><tr style="background:{_TRACK};">{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )

    def __repr__(self) -> str:
        cells = [[_cell_text(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [
            max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)
        ]
        lines = [self.title] if self.title else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(line.rstrip() for line in lines)
