"""A Gantt chart of many hosts' certificate lifetimes, soonest expiry on top (notebook 03).

Theory of operation
-------------------
Each row is one host: its certificate's ``notBefore`` → ``notAfter`` (RFC 5280
§4.1.2.5) against today, coloured by :func:`.status.status_of`. The rows come from
whatever a notebook has at hand: the results of :func:`helpers.fetch.fetch_certificates`
(host, certificate, whether it verified, the error), bare certificates, or labelled
pairs; :func:`_rows` turns each into one :class:`_Row`. A host we could not reach still
gets a row (grey, with the error sentence): a fleet chart that silently drops the broken
hosts would hide exactly the ones to look at.

Below the chart, :func:`.policy._policy_panel` shows the shrinking maximum lifetime, and
a bar longer than the limit for its issue date says so. Both panels share **one** date
axis (the upper one widens to include the policy steps that matter today), so the two
dashed "now" lines are one vertical line. Labels are placed after a first layout pass,
measured with the renderer (:func:`.chain._place_label`): none runs off the figure or
through the "now" line, and an error sentence is shortened only when it cannot fit.

:func:`renewal_timeline` (notebook 10) draws a host's *history* instead: each renewal
starts a new bar where the old certificate was replaced, and every bar shows when it
should have been renewed: a tick at two thirds of its lifetime (what ACME clients do
without ARI, :func:`.status.renewal_due`) and, when the CA gave one, the ARI window
(RFC 9773 §4.2) shaded behind it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ..errors import PlotDataError
from .chain import _place_label
from .policy import _policy_end, _policy_panel, _policy_start, max_lifetime_days
from .status import (
    ERROR,
    STATUS_COLORS,
    _cert_name,
    _days,
    _left_phrase,
    _lifetime_days,
    _status_handles,
    _utc,
    renewal_due,
    status_of,
)
from .style import OKABE_ITO, _date_axis, _new_figure, _now_line

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

__all__ = ["expiry_gantt", "renewal_timeline"]


@dataclass(frozen=True)
class _Row:
    label: str
    cert: x509.Certificate | None
    error: str = ""
    verified: bool | None = None  # None: we were only given a certificate


def _row_from(label: str | None, value: Any) -> _Row:
    if isinstance(value, x509.Certificate):
        return _Row(label or _cert_name(value), value)
    if value is None:
        return _Row(label or "?", None, "no certificate")
    cert = getattr(value, "cert", None)
    if cert is not None and not isinstance(cert, x509.Certificate):
        cert = getattr(cert, "cert", None)  # a helpers.pki Leaf inside something else
    if cert is None and not hasattr(value, "error") and not hasattr(value, "cert"):
        raise PlotDataError(
            f"expiry_gantt() cannot draw a {type(value).__name__}.",
            "Pass certificates, (label, certificate) pairs, or the results of "
            "helpers.fetch.fetch_certificates().",
        )
    name = label or getattr(value, "label", None)
    if not name:
        host, port = getattr(value, "host", None), getattr(value, "port", None)
        if host:
            name = f"{host}:{port}" if port not in (None, 443) else str(host)
        elif cert is not None:
            name = _cert_name(cert)
    verified = getattr(value, "verified", None)
    return _Row(
        str(name or "?"),
        cert,
        str(getattr(value, "error", "") or ""),
        verified if isinstance(verified, bool) else None,
    )


def _rows(items: Any) -> list[_Row]:
    if isinstance(items, Mapping):
        return [_row_from(str(k), v) for k, v in items.items()]
    rows = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            rows.append(_row_from(item[0], item[1]))
        else:
            rows.append(_row_from(None, item))
    return rows


def _shorten(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expiry_gantt(
    items: Iterable[Any] | Mapping[str, Any],
    now: _dt.datetime | None = None,
    show_policy: bool = True,
    *,
    title: str | None = None,
) -> Figure:
    """A Gantt chart of certificate lifetimes for many hosts, soonest expiry on top.

    Each row is one host: a bar from ``notBefore`` to ``notAfter`` coloured by
    :func:`status_of` (see :data:`STATUS_COLORS`), hatched when the certificate did not
    verify, and a grey band with the error sentence when there was no certificate.

    ``items`` may be:

    * results of :func:`helpers.fetch.fetch_certificates` (they carry host, cert,
      verified and error), as in ``expiry_gantt(fetch_certificates(hosts))``;
    * certificates, or ``helpers.pki`` objects with ``.cert``;
    * ``(label, certificate)`` pairs, or a ``{label: certificate}`` mapping.

    With ``show_policy`` a lower panel shows how the CA/Browser Forum is shortening the
    maximum lifetime (398 → 200 → 100 → 47 days): the reason automation (ACME) is no
    longer optional.
    """
    from matplotlib import dates as mdates

    rows = _rows(items)
    if not rows:
        raise PlotDataError(
            "expiry_gantt() got nothing to draw.", "Pass at least one certificate or result."
        )
    moment = _utc(now)
    with_cert = [r for r in rows if r.cert is not None]
    with_cert.sort(key=lambda r: r.cert.not_valid_after_utc)  # type: ignore[union-attr]
    without = [r for r in rows if r.cert is None]
    ordered = with_cert + without

    height = 1.4 + 0.36 * len(ordered) + (1.9 if show_policy else 0.0)
    fig = _new_figure(10.0, height)
    if show_policy:
        main, policy = fig.subplots(
            2, 1, height_ratios=[max(2.0, 0.36 * len(ordered) + 0.6), 1.5], sharex=True
        )
    else:
        main, policy = fig.add_subplot(), None

    if with_cert:
        lo = min(min(r.cert.not_valid_before_utc for r in with_cert), moment)  # type: ignore[union-attr]
        hi = max(max(r.cert.not_valid_after_utc for r in with_cert), moment)  # type: ignore[union-attr]
    else:
        lo, hi = moment - _dt.timedelta(days=30), moment + _dt.timedelta(days=30)
    if policy is not None:  # one x range for both panels: the "now" lines line up
        lo, hi = min(lo, _policy_start(moment)), max(hi, _policy_end())
    span = max(hi - lo, _dt.timedelta(days=2))
    x_lo, x_hi = mdates.date2num(lo - span * 0.02), mdates.date2num(hi + span * 0.3)

    statuses: set[str] = set()
    unverified = False
    labels: list[tuple[float, float, float, str]] = []
    errors: list[tuple[float, str]] = []
    for y, row in enumerate(ordered):
        status = status_of(row.cert, moment)
        statuses.add(status)
        if row.cert is None:
            main.barh(
                y,
                x_hi - x_lo,
                left=x_lo,
                height=0.7,
                color=STATUS_COLORS[ERROR],
                alpha=0.35,
                gid=f"status:{ERROR}",
            )
            errors.append((y, " ".join((row.error or "no certificate").split())))
            continue
        start = mdates.date2num(row.cert.not_valid_before_utc)
        end = mdates.date2num(row.cert.not_valid_after_utc)
        bad = row.verified is False
        unverified |= bad
        main.barh(
            y,
            end - start,
            left=start,
            height=0.7,
            color=STATUS_COLORS[status],
            edgecolor="#333333" if bad else "white",
            hatch="///" if bad else None,
            linewidth=0.6,
            gid=f"status:{status}",
        )
        text = f"{_left_phrase(row.cert, moment)} · {_lifetime_days(row.cert)} d cert"
        allowed = max_lifetime_days(row.cert.not_valid_before_utc)
        if show_policy and allowed is not None and _lifetime_days(row.cert) > allowed:
            text += f" (over the {allowed} d max)"
        labels.append((y, start, end, text))
    main.set_yticks(range(len(ordered)), [_shorten(r.label, 38) for r in ordered], fontsize=8.5)
    main.set_ylim(len(ordered) - 0.5, -0.5)  # first row (soonest expiry) on top
    main.tick_params(axis="y", length=0)
    main.set_xlim(x_lo, x_hi)
    _date_axis(main)
    _now_line(main, moment)
    main.legend(
        handles=_status_handles(list(STATUS_COLORS), unverified=unverified),
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
        title="status",
        title_fontsize=8,
    )
    main.set_title(
        title or f"Certificate lifetimes of {len(ordered)} hosts, soonest expiry first",
        loc="left",
        fontsize=11,
        pad=18,
    )
    if policy is not None:
        main.tick_params(axis="x", labelbottom=True)  # sharex hides them; keep both readable
        _policy_panel(policy, moment, (x_lo, x_hi))
    fig.draw_without_rendering()  # lay out once, then place labels by their real extents
    now_x = mdates.date2num(moment)
    for y, start, end, text in labels:
        _place_label(main, text, y, start, end, 7.5, now=now_x)
    for y, message in errors:
        _fit_message(main, message, y, 8)
    return fig


def _fit_message(ax: Axes, message: str, y: float, size: float) -> Text:
    """Write a host's error across its grey row: whole, on one line or two, never cut.

    Measured with the renderer: one line if it fits inside the axes, else two lines in a
    slightly smaller font, and only as a last resort shortened with "…". A white box
    sits above the dashed "now" line, so the line never runs through the words.
    """
    import textwrap

    x_lo, _ = ax.get_xlim()
    renderer = ax.figure._get_renderer()
    right = ax.get_window_extent(renderer).x1 - 4
    text = ax.annotate(
        message,
        xy=(x_lo, y),
        xytext=(6, 0),
        textcoords="offset points",
        va="center",
        fontsize=size,
        color="#222222",
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
        zorder=6,  # above the now line (zorder 5)
        gid="error-message",
    )
    text.set_in_layout(False)
    if text.get_window_extent(renderer).x1 <= right:
        return text
    text.set_fontsize(size - 1)
    width = len(message) // 2 + 1
    while width < len(message):
        text.set_text("\n".join(textwrap.wrap(message, width)[:2]))
        if len(textwrap.wrap(message, width)) <= 2 and text.get_window_extent(renderer).x1 <= right:
            return text
        width += 4
    words = message
    while text.get_window_extent(renderer).x1 > right and len(words) > 10:
        words = words[: int(len(words) * 0.95) - 1].rstrip()
        text.set_text("\n".join(textwrap.wrap(words + "…", len(words) // 2 + 2)[:2]))
    return text


# --------------------------------------------------------------------------- renewals

#: Certificates that were renewed: drawn in grey up to the moment their successor began.
REPLACED_COLOR = "#8C8C8C"
#: The ARI window (RFC 9773) shaded behind a bar, and the two-thirds tick.
ARI_COLOR = OKABE_ITO["blue"]
TWO_THIRDS_COLOR = OKABE_ITO["black"]


def _histories(items: Any) -> list[tuple[str, list[x509.Certificate]]]:
    """``{label: [cert, ...]}``, ``(label, cert)`` pairs or bare certificates, as one
    history per label (oldest first); bare certificates are grouped by their name."""
    groups: dict[str, list[x509.Certificate]] = {}
    if isinstance(items, Mapping):
        pairs: list[tuple[str | None, Any]] = []
        for label, value in items.items():
            values = value if isinstance(value, list | tuple) else [value]
            pairs.extend((str(label), v) for v in values)
    else:
        pairs = [
            (item[0], item[1])
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
            else (None, item)
            for item in items
        ]
    for label, value in pairs:
        row = _row_from(label, value)
        if row.cert is None:
            raise PlotDataError(
                f"renewal_timeline() got no certificate for {row.label!r}.",
                "Draw hosts without a certificate with expiry_gantt(); this chart needs dates.",
            )
        groups.setdefault(row.label, []).append(row.cert)
    if not groups:
        raise PlotDataError(
            "renewal_timeline() got nothing to draw.", "Pass at least one certificate."
        )
    return [
        (label, sorted(certs, key=lambda c: c.not_valid_before_utc))
        for label, certs in groups.items()
    ]


def _life_phrase(cert: x509.Certificate) -> str:
    """'90 d cert' or, under ten days, '160 h cert' (a 6-day certificate is not '7 d')."""
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    if life < _dt.timedelta(days=10):
        return f"{round(life / _dt.timedelta(hours=1))} h cert"
    return f"{_lifetime_days(cert)} d cert"


def renewal_timeline(
    items: Iterable[Any] | Mapping[str, Any],
    now: _dt.datetime | None = None,
    *,
    windows: Mapping[int, Any] | Callable[[x509.Certificate], Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Certificates and their renewals, host by host, with the renewal windows shaded.

    ``items``: ``{label: [certificate, renewal, ...]}``, ``(label, certificate)`` pairs, or
    bare certificates (grouped by name); within a host, oldest first (a tie in
    ``notBefore``, a renewal in the same second, keeps the order given).

    Each certificate has a row of its own under its host, so a renewal is a staircase:
    a replaced certificate's bar is grey up to the moment its successor began (``gid
    "replaced"``), and the life it gave up is a dotted outline (``"unused"``: renewing
    early is the point, not waste); the next row starts right there, at a triangle
    (``"renewal"``). The newest certificate of each host is coloured by
    :func:`status_of` (``"status:<status>"``).

    On every row a black tick marks **two thirds** of the lifetime (``"two-thirds"``),
    where clients without ARI renew, and ``windows`` (a ``{serial: RenewalWindow}``
    mapping or a function such as ``AcmeClient.renewal_info``) shades each
    certificate's **ARI window** (RFC 9773 §4.2; ``"ari-window"``). A renewal inside the
    shading came when the CA asked; a newest certificate already past its window (or,
    without one, past two thirds) is labelled "renewal missed".
    """
    from matplotlib import dates as mdates
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    hosts = _histories(items)
    moment = _utc(now)
    hosts.sort(key=lambda h: h[1][-1].not_valid_after_utc)  # soonest expiry on top

    def window_of(cert: x509.Certificate) -> Any:
        if windows is None:
            return None
        if callable(windows):
            return windows(cert)
        return windows.get(cert.serial_number)

    every = [c for _, certs in hosts for c in certs]
    lo = min(min(c.not_valid_before_utc for c in every), moment)
    hi = max(max(c.not_valid_after_utc for c in every), moment)
    span = max(hi - lo, _dt.timedelta(days=2))
    x_lo, x_hi = mdates.date2num(lo - span * 0.02), mdates.date2num(hi + span * 0.35)

    fig = _new_figure(10.0, 1.5 + 0.36 * len(every) + 0.15 * len(hosts))
    ax = fig.add_subplot()
    statuses: list[str] = []
    shaded = False
    ticks: list[str] = []
    labels: list[tuple[float, float, float, str]] = []
    y = 0
    for host, certs in hosts:
        for i, cert in enumerate(certs):
            ticks.append(_shorten(host, 38) if i == 0 else f"\u21b3 renewal {i}")
            start = mdates.date2num(cert.not_valid_before_utc)
            end = mdates.date2num(cert.not_valid_after_utc)
            window = window_of(cert)
            if window is not None:
                shaded = True
                w0, w1 = mdates.date2num(window.start), mdates.date2num(window.end)
                ax.barh(
                    y,
                    w1 - w0,
                    left=w0,
                    height=0.8,
                    facecolor=to_rgba(ARI_COLOR, 0.25),  # see-through: the bar shows below
                    edgecolor=ARI_COLOR,
                    linewidth=1.0,
                    zorder=3,
                    gid="ari-window",
                )
            successor = certs[i + 1] if i + 1 < len(certs) else None
            if successor is None:
                status = status_of(cert, moment)
                if status not in statuses:
                    statuses.append(status)
                ax.barh(
                    y,
                    end - start,
                    left=start,
                    height=0.55,
                    color=STATUS_COLORS[status],
                    edgecolor="white",
                    linewidth=0.6,
                    zorder=2,
                    gid=f"status:{status}",
                )
                text = f"{_left_phrase(cert, moment)} · {_life_phrase(cert)}"
                point = window.end if window is not None else renewal_due(cert)
                if point < moment <= cert.not_valid_after_utc:
                    text += " · renewal missed"  # past its renewal point, not replaced
                labels.append((y, start, end, text))
            else:
                replaced_at = min(successor.not_valid_before_utc, cert.not_valid_after_utc)
                cut = mdates.date2num(replaced_at)
                ax.barh(
                    y,
                    cut - start,
                    left=start,
                    height=0.55,
                    color=REPLACED_COLOR,
                    edgecolor="white",
                    linewidth=0.6,
                    zorder=2,
                    gid="replaced",
                )
                if end > cut:
                    ax.barh(
                        y,
                        end - cut,
                        left=cut,
                        height=0.55,
                        fill=False,
                        edgecolor=REPLACED_COLOR,
                        linewidth=0.9,
                        linestyle=":",
                        zorder=2,
                        gid="unused",
                    )
                used = replaced_at - cert.not_valid_before_utc
                after = _days(used) if used >= _dt.timedelta(hours=1) else "< 1 h"
                labels.append((y, start, end, f"replaced after {after} · {_life_phrase(cert)}"))
            if i > 0:
                ax.plot(
                    [start],
                    [y - 0.5],
                    marker="v",
                    markersize=7,
                    color=OKABE_ITO["vermillion"],
                    linestyle="none",
                    zorder=4,
                    gid="renewal",
                )
            third = mdates.date2num(renewal_due(cert))
            ax.plot(
                [third, third],
                [y - 0.3, y + 0.3],
                color=TWO_THIRDS_COLOR,
                linewidth=1.6,
                zorder=3,
                gid="two-thirds",
            )
            y += 1
        if y < len(every):
            ax.axhline(y - 0.5, color="#DDDDDD", linewidth=0.8, zorder=0, gid="host-separator")
    ax.set_yticks(range(len(ticks)), ticks, fontsize=8.5)
    ax.set_ylim(len(ticks) - 0.5, -0.7)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(x_lo, x_hi)
    _date_axis(ax)
    _now_line(ax, moment)
    handles: list[Any] = _status_handles(statuses)
    if len(every) > len(hosts):
        handles.append(Patch(facecolor=REPLACED_COLOR, label="replaced by its renewal"))
        handles.append(
            Patch(fill=False, edgecolor=REPLACED_COLOR, linestyle=":", label="life given up")
        )
        handles.append(
            Line2D(
                [],
                [],
                marker="v",
                color=OKABE_ITO["vermillion"],
                linestyle="none",
                label="renewed here",
            )
        )
    handles.append(Line2D([], [], color=TWO_THIRDS_COLOR, linewidth=1.6, label="two thirds"))
    if shaded:
        handles.append(
            Patch(
                facecolor=to_rgba(ARI_COLOR, 0.25),
                edgecolor=ARI_COLOR,
                label="ARI window (RFC 9773)",
            )
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
        title="renewal",
        title_fontsize=8,
    )
    renewals = len(every) - len(hosts)
    whose = "1 host and its" if len(hosts) == 1 else f"{len(hosts)} hosts and their"
    plural = "" if renewals == 1 else "s"
    ax.set_title(
        title or f"Certificates of {whose} {renewals} renewal{plural}",
        loc="left",
        fontsize=11,
        pad=18,
    )
    fig.draw_without_rendering()
    now_x = mdates.date2num(moment)
    for row, start, end, text in labels:
        _place_label(ax, text, row, start, end, 7.5, now=now_x)
    return fig
