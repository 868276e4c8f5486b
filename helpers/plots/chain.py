"""One chain's validity periods as bars, root on top (notebook 02; again in 03).

Theory of operation
-------------------
Each certificate's ``notBefore`` and ``notAfter`` fields (RFC 5280 §4.1.2.5) become a
bar on a date axis, coloured by :func:`.status.status_of`, with a dashed line at today.
A chain is only as valid as its shortest-lived member *today*: the picture shows an
expired intermediate next to a brand-new leaf.

Servers send their chain leaf first (RFC 8446 §4.4.2); :func:`_root_first` re-orders it
by following issuer → subject, so the picture reads from the root down.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ..errors import PlotDataError
from .status import (
    STATUS_COLORS,
    _cert_name,
    _left_phrase,
    _lifetime_days,
    _status_handles,
    _utc,
    status_of,
)
from .style import _bar_label, _date_axis, _new_figure, _now_line

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.figure import Figure

__all__ = ["chain_timeline"]


def _as_certificates(items: Iterable[Any]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for item in items:
        cert = item if isinstance(item, x509.Certificate) else getattr(item, "cert", None)
        if not isinstance(cert, x509.Certificate):
            raise PlotDataError(
                f"chain_timeline() got {type(item).__name__}, not a certificate.",
                "Pass x509.Certificate objects (or helpers.pki CA/Leaf objects, which have .cert).",
            )
        certs.append(cert)
    return certs


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _role(cert: x509.Certificate) -> str:
    self_issued = cert.subject == cert.issuer
    if _is_ca(cert):
        return "root" if self_issued else "intermediate"
    return "self-signed" if self_issued else "leaf"


def _root_first(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Order certificates from the top of the chain down, by following issuer → subject.

    The order a server sends is leaf first (RFC 8446 §4.4.2); a picture of trust reads
    better from the root down, so we walk from certificates whose issuer is not in the
    list, to the certificates they issued.
    """
    remaining = list(certs)
    ordered: list[x509.Certificate] = []
    while remaining:
        subjects = {c.subject for c in remaining}
        tops = [c for c in remaining if c.issuer == c.subject or c.issuer not in subjects]
        if not tops:  # a loop of cross-signatures: keep the given order
            tops = remaining[:1]
        tops.sort(key=lambda c: (not _is_ca(c), c.not_valid_before_utc))
        top = tops[0]
        ordered.append(top)
        remaining.remove(top)
    return ordered


def chain_timeline(
    certs: Iterable[x509.Certificate | Any],
    now: _dt.datetime | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Draw each certificate of a chain as a bar from ``notBefore`` to ``notAfter``.

    Root on top, then intermediates, then the leaf; a dashed line marks ``now`` and each
    bar says how many days it has left. Bars are coloured by :func:`status_of`.

    A chain is only as valid as its shortest-lived member *today*: if the intermediate
    has expired, a brand-new leaf does not help. The picture makes that visible.

    ``certs`` may hold :class:`x509.Certificate` objects or anything with a ``.cert``
    (``helpers.pki`` CAs and leaves), e.g. ``chain_timeline([root, inter, leaf])``.
    """
    from matplotlib import dates as mdates

    chain = _root_first(_as_certificates(certs))
    if not chain:
        raise PlotDataError(
            "chain_timeline() got no certificates.", "Pass a list such as [root, inter, leaf]."
        )
    moment = _utc(now)
    fig = _new_figure(9.0, 1.2 + 0.75 * len(chain))
    ax = fig.add_subplot()

    lo = min(min(c.not_valid_before_utc for c in chain), moment)
    hi = max(max(c.not_valid_after_utc for c in chain), moment)
    span = hi - lo
    # Room on the right for the "days left" labels.
    x_lo, x_hi = mdates.date2num(lo - span * 0.03), mdates.date2num(hi + span * 0.3)
    ax.set_xlim(x_lo, x_hi)
    statuses: list[str] = []
    for row, cert in enumerate(chain):
        status = status_of(cert, moment)
        statuses.append(status)
        start = mdates.date2num(cert.not_valid_before_utc)
        end = mdates.date2num(cert.not_valid_after_utc)
        (bar,) = ax.barh(
            row,
            end - start,
            left=start,
            height=0.55,
            color=STATUS_COLORS[status],
            edgecolor="white",
            gid=f"status:{status}",
        )
        bar.set_label("_nolegend_")
        text = f"{_left_phrase(cert, moment)}  ({_lifetime_days(cert)}-day certificate)"
        _bar_label(ax, text, row, start, end, x_lo, x_hi, 8.5)
    ax.set_yticks(range(len(chain)), [f"{_role(c)}\n{_cert_name(c)}" for c in chain], fontsize=9)
    ax.invert_yaxis()  # root at the top, leaf at the bottom
    ax.tick_params(axis="y", length=0)

    _date_axis(ax)
    _now_line(ax, moment)
    seen = [s for s in STATUS_COLORS if s in statuses]
    ax.legend(
        handles=_status_handles(seen),
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
        title="status",
        title_fontsize=8,
    )
    ax.set_title(title or "Validity periods along the chain", loc="left", fontsize=11, pad=18)
    return fig
