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
from .style import _date_axis, _new_figure, _now_line

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation

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


def _place_label(
    ax: Axes,
    text: str,
    y: float,
    start: float,
    end: float,
    size: float,
    *,
    now: float | None = None,
) -> Annotation:
    """Label a bar where the text fits inside the axes and stays clear of the now line.

    Tries, in order: just after the bar, inside it at its end, just before it, and just
    right of the now line. Each try is measured with the renderer (the text's real
    extent, :meth:`~matplotlib.text.Text.get_window_extent`), so a long label is never
    cut off by the axes edge nor drawn through the dashed "now" line. The figure must
    have been laid out once (``fig.draw_without_rendering()``) before this is called;
    the label is kept out of the layout so placing it does not move the axes.
    """
    from .style import _LABEL_BOX

    lo, hi = ax.get_xlim()
    a, b = max(start, lo), min(end, hi)
    candidates = [
        ((b, y), (4, 0), "left"),  # after the bar
        ((b, y), (-4, 0), "right"),  # inside, at its end
        ((a, y), (4, 0), "left"),  # inside, at its start
        ((a, y), (-4, 0), "right"),  # before the bar
    ]
    if now is not None:
        candidates.append(((now, y), (6, 0), "left"))
    renderer = ax.figure._get_renderer()  # the one draw_without_rendering() used
    box = ax.get_window_extent(renderer)
    now_px = None if now is None else ax.transData.transform((now, 0))[0]
    bar_px = ax.transData.transform([(a, y), (b, y)])[:, 0]
    label = ax.annotate(
        text,
        xy=candidates[0][0],
        xytext=candidates[0][1],
        textcoords="offset points",
        ha=candidates[0][2],
        va="center",
        fontsize=size,
        bbox=_LABEL_BOX,
        gid="bar-label",
        annotation_clip=False,
    )
    label.set_in_layout(False)
    fallback = None
    for i, (xy, offset, ha) in enumerate(candidates):
        label.xy, label.xyann = xy, offset
        label.set_ha(ha)
        ext = label.get_window_extent(renderer)
        inside = ext.x0 >= box.x0 - 1 and ext.x1 <= box.x1 + 1
        if i in (1, 2) and not (bar_px[0] - 1 <= ext.x0 and ext.x1 <= bar_px[1] + 1):
            continue  # "inside the bar" must fit inside the bar
        clear = now_px is None or ext.x1 < now_px - 2 or ext.x0 > now_px + 2
        if inside and clear:
            return label
        if inside and fallback is None:
            fallback = (xy, offset, ha)
    xy, offset, ha = fallback or candidates[0]
    label.xy, label.xyann = xy, offset
    label.set_ha(ha)
    return label


def _zoom_window(
    chain: list[x509.Certificate], moment: _dt.datetime
) -> tuple[_dt.datetime, _dt.datetime] | None:
    """The dates a second panel should show so the shortest certificate is readable.

    ``None`` when every bar is already wide enough on the whole-chain axis.
    """
    shortest = min(chain, key=lambda c: c.not_valid_after_utc - c.not_valid_before_utc)
    lo = min(min(c.not_valid_before_utc for c in chain), moment)
    hi = max(max(c.not_valid_after_utc for c in chain), moment)
    life = shortest.not_valid_after_utc - shortest.not_valid_before_utc
    if life >= (hi - lo) * 0.2:
        return None
    a = min(shortest.not_valid_before_utc, moment)
    b = max(shortest.not_valid_after_utc, moment)
    span = max(b - a, _dt.timedelta(days=2))
    return a - span * 0.12, b + span * 0.7  # room on the right for the labels


def _draw_rows(
    ax: Axes,
    chain: list[x509.Certificate],
    moment: _dt.datetime,
    x_lo: float,
    x_hi: float,
    *,
    clip: bool,
) -> list[tuple[int, float, float, str]]:
    """One bar per certificate; returns (row, start, end, label text) for labelling later."""
    from matplotlib import dates as mdates

    ax.set_xlim(x_lo, x_hi)
    todo = []
    for row, cert in enumerate(chain):
        status = status_of(cert, moment)
        start = mdates.date2num(cert.not_valid_before_utc)
        end = mdates.date2num(cert.not_valid_after_utc)
        a, b = (max(start, x_lo), min(end, x_hi)) if clip else (start, end)
        (bar,) = ax.barh(
            row,
            b - a,
            left=a,
            height=0.55,
            color=STATUS_COLORS[status],
            edgecolor="white",
            gid=f"status:{status}",
        )
        bar.set_label("_nolegend_")
        text = f"{_left_phrase(cert, moment)}  ({_lifetime_days(cert)}-day certificate)"
        if clip:  # the upper panel already says how long each certificate lives
            text = ("◂ " if start < x_lo else "") + _left_phrase(cert, moment)
            text += " ▸" if end > x_hi else ""
        todo.append((row, a, b, text))
    ax.set_yticks(range(len(chain)), [f"{_role(c)}\n{_cert_name(c)}" for c in chain], fontsize=9)
    ax.set_ylim(len(chain) - 0.5, -0.5)  # root at the top, leaf at the bottom
    ax.tick_params(axis="y", length=0)
    _date_axis(ax)
    return todo


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

    CAs live for years and leaves for weeks, so on one axis a 90-day leaf would be a
    sliver. When the shortest certificate would take less than a fifth of the axis, a
    second panel below zooms on it (and on today): same rows, same colours, a date
    axis in months or days; the zoomed range is shaded on the upper panel.

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
    window = _zoom_window(chain, moment)
    rows_height = 0.8 + 0.62 * len(chain)
    fig = _new_figure(9.0, 0.9 + rows_height * (2 if window else 1))
    if window:
        ax, zoom = fig.subplots(2, 1)
    else:
        ax, zoom = fig.add_subplot(), None

    lo = min(min(c.not_valid_before_utc for c in chain), moment)
    hi = max(max(c.not_valid_after_utc for c in chain), moment)
    span = hi - lo
    # Room on the right for the "days left" labels.
    x_lo, x_hi = mdates.date2num(lo - span * 0.03), mdates.date2num(hi + span * 0.35)
    todo = [(ax, *t) for t in _draw_rows(ax, chain, moment, x_lo, x_hi, clip=False)]
    _now_line(ax, moment)
    if zoom is not None and window is not None:
        z_lo, z_hi = mdates.date2num(window[0]), mdates.date2num(window[1])
        ax.axvspan(z_lo, z_hi, color="#999999", alpha=0.15, zorder=0, gid="zoom-window")
        todo += [(zoom, *t) for t in _draw_rows(zoom, chain, moment, z_lo, z_hi, clip=True)]
        _now_line(zoom, moment, label=False)
        zoom.set_title(
            f"Zoomed in on the shaded part, {window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d} "
            "(◂ ▸: the bar goes on)",
            loc="left",
            fontsize=9,
        )
        zoom.set_gid("zoom")
    statuses = [status_of(c, moment) for c in chain]
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
    fig.draw_without_rendering()  # lay out once, then place labels by their real extents
    now_x = mdates.date2num(moment)
    for target, row, a, b, text in todo:
        _place_label(target, text, row, a, b, 8.5, now=now_x)
    return fig
