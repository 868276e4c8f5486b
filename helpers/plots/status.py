"""A certificate's status at a moment: in date, due for renewal, expired... (notebook 03).

The certificate figures (:mod:`.chain`, :mod:`.expiry`) and the monitor table of
notebook 03 (``helpers/plots/status.py`` → :func:`status_of`) colour and label every
certificate by its status, so the status names, their colours and their legend text
live here, with the few phrases the bars are labelled with ("89 d left", "expired 3 d ago").

Theory of operation
-------------------
A certificate is within its dates from ``notBefore`` to ``notAfter`` *inclusive*
(RFC 5280 §4.1.2.5). Everything here compares those two fields against one moment in
UTC, which defaults to now; pass ``now`` to ask about any other day.

**"In date" is not "valid".** The dates are one rule of path validation among many
(RFC 5280 §6.1.3); a self-signed or wrongly named certificate is perfectly in date.
So the status that means "within its dates" is called ``"in date"``: a monitor shows
it next to ``verified: no`` without contradicting itself.

**Due for renewal is relative to the lifetime.** ACME clients renew when about two
thirds of a certificate's lifetime has passed (certbot: 30 days before the end of a
90-day certificate), and with ACME Renewal Information (ARI, RFC 9773) the CA itself
suggests the window. A fixed "30 days left" rule would flag a 6-day certificate as
expiring the moment it is issued, and stay silent far too long about a 398-day one,
so :func:`status_of` calls a certificate ``"expiring"`` once :data:`RENEW_AT` of its
lifetime has passed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..acme.ari import RENEW_AT, two_thirds
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
    "IN_DATE",
    "RENEW_AT",
    "renewal_due",
    "status_of",
]

#: Certificate status names, as returned by :func:`status_of`.
EXPIRED = "expired"
EXPIRING = "expiring"
#: Within its dates. Only the dates: a certificate can be in date and still not verify.
IN_DATE = "in date"
VALID = IN_DATE  # the older name of the same status, kept for code that imports it
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
    EXPIRING: "due for renewal (2/3 of its life gone)",
    VALID: "in date (dates only)",
    NOT_YET_VALID: "not yet valid",
    ERROR: "error (no certificate)",
}


#: The old absolute window ("expiring" = 30 days or fewer left). Pass it as ``soon=`` to
#: :func:`status_of` to get that behaviour back; the default is relative (:data:`RENEW_AT`).
EXPIRING_WITHIN = _dt.timedelta(days=30)


def _utc(moment: _dt.datetime | None) -> _dt.datetime:
    """``moment`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if moment is None:
        return _dt.datetime.now(_dt.UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def renewal_due(cert: x509.Certificate) -> _dt.datetime:
    """When ``cert`` is due for renewal: :data:`RENEW_AT` of the way through its lifetime
    (the rule lives in :func:`helpers.acme.ari.two_thirds`, notebook 10)."""
    return two_thirds(cert)


def status_of(
    cert: x509.Certificate | None,
    now: _dt.datetime | None = None,
    *,
    soon: _dt.timedelta | None = None,
) -> str:
    """Classify a certificate's validity period at ``now`` (default: this moment, UTC).

    RFC 5280 §4.1.2.5: a certificate is within its dates from ``notBefore`` to
    ``notAfter`` *inclusive*: :data:`IN_DATE` ("in date", which says nothing about
    whether it verifies), or :data:`EXPIRING` once it is due for renewal
    (:func:`renewal_due`; or, with ``soon=``, when at most ``soon`` is left).
    ``None`` (we could not get a certificate at all) is :data:`ERROR`.

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
    if soon is not None:
        due = cert.not_valid_after_utc - moment <= soon
    else:
        due = moment >= renewal_due(cert)
    return EXPIRING if due else IN_DATE


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
