"""How long a certificate lives: its notBefore and notAfter (notebook 04).

Every certificate is valid from *notBefore* until *notAfter* (RFC 5280 §4.1.2.5), and
a verifier compares both with its own clock. The defaults below say how long CAs and
leaves live and why; :func:`_validity` turns what a caller passes (nothing, one end,
both ends, datetimes or timedeltas from now) into the two times that get signed. An
expired certificate is nothing special: it is one whose ``not_after`` is in the past.
"""

from __future__ import annotations

import datetime as _dt

from ..errors import PKIError

__all__ = ["BACKDATE", "DEFAULT_CA_LIFETIME", "DEFAULT_LEAF_LIFETIME", "TimeSpec"]

#: A time as callers pass it: a datetime (naive ones are taken as UTC), a timedelta from
#: now, or None for "the default".
TimeSpec = _dt.datetime | _dt.timedelta | None

#: Roots and intermediates live long: replacing a root means updating every client.
DEFAULT_CA_LIFETIME = _dt.timedelta(days=3650)
#: Leaves live 90 days, like Let's Encrypt's: short lives limit the damage of a stolen key
#: (revocation is unreliable in practice), and make renewal a routine, automated job.
DEFAULT_LEAF_LIFETIME = _dt.timedelta(days=90)
#: ``not_before`` is set an hour in the past so that a client whose clock runs a little
#: behind does not see a brand-new certificate as "not yet valid" (X509 error 9).
BACKDATE = _dt.timedelta(hours=1)

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; the package supports 3.10)


def _now() -> _dt.datetime:
    # X.509 times have one-second resolution (RFC 5280 §4.1.2.5): drop microseconds.
    return _dt.datetime.now(_UTC).replace(microsecond=0)


def _as_time(value: TimeSpec, now: _dt.datetime) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return now + value
    if value.tzinfo is None:  # naive datetimes are taken to be UTC, as the contract says
        value = value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC).replace(microsecond=0)


def _validity(
    not_before: TimeSpec, not_after: TimeSpec, lifetime: _dt.timedelta
) -> tuple[_dt.datetime, _dt.datetime]:
    """Resolve the validity period. Give either end (or both); the other follows.

    A ``not_after`` in the past gives an expired certificate; a ``not_before`` in the
    future gives one that is not valid yet. ``timedelta`` values are relative to now.
    """
    now = _now()
    nb, na = _as_time(not_before, now), _as_time(not_after, now)
    if nb is None and na is None:
        nb, na = now - BACKDATE, now + lifetime
    elif nb is None:
        assert na is not None
        nb = min(now - BACKDATE, na - lifetime)
    elif na is None:
        na = nb + lifetime
    assert nb is not None and na is not None
    if na <= nb:
        raise PKIError(
            f"not_after ({na:%Y-%m-%d %H:%M}) is not later than not_before ({nb:%Y-%m-%d %H:%M}).",
            "Swap them, or give only one end and let the other follow.",
        )
    return nb, na
