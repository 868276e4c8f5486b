"""A certificate's status at a moment: valid, expiring, expired... (notebook 03).

The certificate figures (:mod:`.chain`, :mod:`.expiry`) colour every bar by
:func:`status_of`, so the status names, their colours and their legend text live here,
with the few phrases the bars are labelled with ("89 d left", "expired 3 d ago").

Theory of operation
-------------------
A certificate is valid from ``notBefore`` to ``notAfter`` *inclusive*
(RFC 5280 §4.1.2.5). Everything here compares those two fields against one moment in
UTC, which defaults to now; pass ``now`` to ask about any other day.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from .style import _GREY, OKABE_ITO

__all__ = [
    "STATUS_COLORS",
    "STATUS_LABELS",
    "EXPIRED",
    "EXPIRING",
    "VALID",
    "NOT_YET_VALID",
    "ERROR",
    "EXPIRING_WITHIN",
    "status_of",
]

#: Certificate status names, as returned by :func:`status_of`.
EXPIRED = "expired"
EXPIRING = "expiring"
VALID = "valid"
NOT_YET_VALID = "not yet valid"
ERROR = "error"

#: One colour per status. Tests and notebooks may read it; please don't change it in place.
STATUS_COLORS: dict[str, str] = {
    EXPIRED: OKABE_ITO["vermillion"],
    EXPIRING: OKABE_ITO["orange"],
    VALID: OKABE_ITO["bluish green"],
    NOT_YET_VALID: OKABE_ITO["sky blue"],
    ERROR: _GREY,
}

#: Legend text for each status.
STATUS_LABELS: dict[str, str] = {
    EXPIRED: "expired",
    EXPIRING: "expires within 30 days",
    VALID: "valid",
    NOT_YET_VALID: "not yet valid",
    ERROR: "error (no certificate)",
}

#: "Expiring soon" means within this window; 30 days is what most monitoring uses.
EXPIRING_WITHIN = _dt.timedelta(days=30)


def _utc(moment: _dt.datetime | None) -> _dt.datetime:
    """``moment`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if moment is None:
        return _dt.datetime.now(_dt.UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def status_of(
    cert: x509.Certificate | None,
    now: _dt.datetime | None = None,
    *,
    soon: _dt.timedelta = EXPIRING_WITHIN,
) -> str:
    """Classify a certificate's validity period at ``now`` (default: this moment, UTC).

    RFC 5280 §4.1.2.5: a certificate is valid from ``notBefore`` to ``notAfter``
    *inclusive*. ``None`` (we could not get a certificate at all) is :data:`ERROR`.

    >>> status_of(None)
    'error'
    """
    if cert is None:
        return ERROR
    moment = _utc(now)
    if moment < cert.not_valid_before_utc:
        return NOT_YET_VALID
    if moment > cert.not_valid_after_utc:
        return EXPIRED
    if cert.not_valid_after_utc - moment <= soon:
        return EXPIRING
    return VALID


def _cert_name(cert: x509.Certificate) -> str:
    """A short human name: the subject CN, else the first DNS name, else the whole subject."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        return str(cns[0].value)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        names = san.get_values_for_type(x509.DNSName)
        if names:
            return names[0]
    return cert.subject.rfc4514_string() or "(no subject)"


def _days(delta: _dt.timedelta) -> str:
    days = abs(delta) / _dt.timedelta(days=1)
    if days < 1:
        hours = max(1, round(days * 24))
        return f"{hours} h"
    return f"{int(days)} d"


def _lifetime_days(cert: x509.Certificate) -> int:
    return round((cert.not_valid_after_utc - cert.not_valid_before_utc) / _dt.timedelta(days=1))


def _left_phrase(cert: x509.Certificate, now: _dt.datetime) -> str:
    """'89 d left', 'expired 3 d ago' or 'starts in 5 d'."""
    if now < cert.not_valid_before_utc:
        return f"starts in {_days(cert.not_valid_before_utc - now)}"
    if now > cert.not_valid_after_utc:
        return f"expired {_days(now - cert.not_valid_after_utc)} ago"
    return f"{_days(cert.not_valid_after_utc - now)} left"


def _status_handles(statuses: Iterable[str], *, unverified: bool = False) -> list[Any]:
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Patch(facecolor=STATUS_COLORS[s], edgecolor="white", label=STATUS_LABELS[s])
        for s in statuses
    ]
    if unverified:
        handles.append(
            Patch(facecolor="white", edgecolor="#444444", hatch="///", label="did not verify")
        )
    return handles
