"""Drawings of handshakes and certificate lifetimes (introduced in notebooks 01 and 03 (handshakes: 06)).

Theory of operation
-------------------
Every function here *draws data it is given*; none of them invents a picture.

* A **handshake diagram** is drawn from a :class:`helpers.capture.Capture`: the bytes
  really sent on a connection, cut into TLS records by :mod:`helpers.handshake`. One
  arrow per handshake message (or per encrypted record whose contents we cannot read),
  labelled with its size on the wire. Give it a :mod:`helpers.tls13` decryption and
  the encrypted arrows get their real names.
* A **handshake timeline** is drawn from :func:`helpers.timing.measure_timeline`:
  wall-clock measurements of real connections through a relay that delays every
  packet, so a round trip is long enough to see.
* **Expiry timelines** are drawn from X.509 certificates: their ``notBefore`` and
  ``notAfter`` fields (RFC 5280 §4.1.2.5), against today's date.
* A **grade chart** (notebook 08) is drawn from :func:`helpers.probe.grade` results:
  the weighted category scores of real scans, and the rules that capped them.

Conventions, so a notebook can rely on them:

* every function returns a :class:`matplotlib.figure.Figure` and never calls
  ``plt.show()``: the notebook displays the returned value, or you call
  ``fig.savefig(...)``;
* the figure is created with pyplot (so Jupyter knows how to display it) and then
  released from pyplot at once (``plt.close(fig)``), so it is shown exactly once
  and nothing piles up in pyplot's list of open figures;
* no global matplotlib state is changed: no ``plt.style.use``, no ``rcParams`` edits;
* colours come from the Okabe–Ito palette, which stays distinguishable with the common
  forms of colour blindness; colour is never the only cue (labels, hatches, legends).

Artists that tests (and curious learners) may want to find carry a ``gid``:
``"now"`` for the today line, ``"status:<status>"`` on certificate bars,
``"policy"`` on the CA/Browser Forum panel.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import PlotDataError

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "OKABE_ITO",
    "STATUS_COLORS",
    "STATUS_LABELS",
    "EXPIRED",
    "EXPIRING",
    "VALID",
    "NOT_YET_VALID",
    "ERROR",
    "EXPIRING_WITHIN",
    "POLICY_STEPS",
    "max_lifetime_days",
    "status_of",
    "chain_timeline",
    "expiry_gantt",
    "PLAINTEXT_COLOR",
    "ENCRYPTED_COLOR",
    "FlightCount",
    "count_flights",
    "handshake_diagram",
    "compare_handshakes",
    "TIMELINE_COLORS",
    "handshake_timeline",
    "GRADE_COLORS",
    "grade_chart",
]

# --------------------------------------------------------------------------- palette

#: The Okabe–Ito palette (Okabe & Ito, 2008): eight colours chosen to stay apart for
#: readers with deuteranopia, protanopia and tritanopia.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
_GREY = "#8C8C8C"
# A white box behind text that may cross a line or a bar edge.
_LABEL_BOX = {
    "boxstyle": "round,pad=0.15",
    "facecolor": "white",
    "edgecolor": "none",
    "alpha": 0.85,
}

# --------------------------------------------------------------------------- expiry

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

#: Maximum lifetime of a publicly trusted TLS server certificate, in days, by issuance
#: date (CA/Browser Forum Baseline Requirements §6.3.2, as changed by ballot SC-081).
#: Each entry: (first day the limit applies, maximum days).
POLICY_STEPS: tuple[tuple[_dt.date, int], ...] = (
    (_dt.date(2020, 9, 1), 398),
    (_dt.date(2026, 3, 15), 200),
    (_dt.date(2027, 3, 15), 100),
    (_dt.date(2029, 3, 15), 47),
)


def max_lifetime_days(on: _dt.date | _dt.datetime) -> int | None:
    """The longest lifetime (days) the CA/B Forum allows for a certificate issued ``on``.

    ``None`` before 2020-09-01, when the 398-day rule began (earlier limits were longer).
    """
    day = on.date() if isinstance(on, _dt.datetime) else on
    allowed: int | None = None
    for start, days in POLICY_STEPS:
        if day >= start:
            allowed = days
    return allowed


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


# ----------------------------------------------------------------- figures, shared bits


def _new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A fresh figure that pyplot has already let go of.

    pyplot is imported here, not at module import, because importing it chooses a
    backend. Creating the figure through pyplot lets Jupyter's inline backend register
    how to display figures; closing it straight away means the notebook shows it once
    (as the cell's value) and pyplot keeps no reference to it.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width, height), layout="constrained", **kwargs)
    plt.close(fig)
    return fig


def _now_line(ax: Axes, now: _dt.datetime, *, label: bool = True) -> None:
    from matplotlib import dates as mdates

    x = mdates.date2num(now)
    ax.axvline(x, color=OKABE_ITO["black"], linestyle="--", linewidth=1.2, zorder=5, gid="now")
    if label:
        ax.annotate(
            f"now · {now:%Y-%m-%d}",
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            gid="now-label",
        )


def _date_axis(ax: Axes) -> None:
    from matplotlib import dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


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


def _bar_label(
    ax: Axes, text: str, y: float, start: float, end: float, x_lo: float, x_hi: float, size: float
) -> None:
    """Write ``text`` after a bar if it fits, else inside it, else before it.

    The width is estimated (about 0.6 em per character) so no renderer is needed.
    """
    axis_inches = ax.figure.get_figwidth() * 0.72
    needed = len(text) * size * 0.55 / 72 / axis_inches * (x_hi - x_lo)
    if end - max(start, x_lo) >= needed * 1.1 and x_hi - end < needed:
        xy, offset, ha = (end, y), (-4, 0), "right"  # inside the bar, at its end
    elif x_hi - end < needed and start - x_lo >= needed * 1.05:
        xy, offset, ha = (start, y), (-3, 0), "right"  # before the bar
    else:
        xy, offset, ha = (end, y), (3, 0), "left"  # after the bar (the usual place)
    ax.annotate(
        text,
        xy=xy,
        xytext=offset,
        textcoords="offset points",
        ha=ha,
        va="center",
        fontsize=size,
        bbox=_LABEL_BOX,
        gid="bar-label",
    )


# ----------------------------------------------------------------- chain timeline


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


# ----------------------------------------------------------------- many hosts: Gantt


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


def _policy_panel(ax: Axes, now: _dt.datetime) -> None:
    """A step chart of the CA/B Forum maximum certificate lifetime (ballot SC-081)."""
    from matplotlib import dates as mdates

    end = _dt.datetime(2030, 9, 1, tzinfo=_dt.UTC)
    start = _dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)
    xs = [start] + [
        _dt.datetime.combine(d, _dt.time(), _dt.UTC) for d, _ in POLICY_STEPS if d > start.date()
    ]
    ys = [max_lifetime_days(x) or 0 for x in xs]
    xs.append(end)
    ys.append(ys[-1])
    ax.step(xs, ys, where="post", color=OKABE_ITO["blue"], linewidth=2)
    ax.fill_between(xs, ys, step="post", color=OKABE_ITO["blue"], alpha=0.12)
    for x, y in zip(xs[:-1], ys[:-1], strict=False):
        ax.annotate(
            f"{y} days" + (f"\nfrom {x:%Y-%m-%d}" if x > start else ""),
            xy=(mdates.date2num(x), y),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
            va="bottom",
            bbox=_LABEL_BOX,
        )
    ax.set_ylim(0, 520)
    ax.set_ylabel("max days", fontsize=8)
    ax.set_xlim(mdates.date2num(start), mdates.date2num(end))
    _date_axis(ax)
    if start <= now <= end:
        _now_line(ax, now, label=False)
        today = max_lifetime_days(now)
        ax.annotate(
            f"issued today: at most {today} days",
            xy=(mdates.date2num(now), today or 0),
            xytext=(40, 30),
            textcoords="offset points",
            ha="left",
            fontsize=8,
            arrowprops={"arrowstyle": "->", "color": "#333333"},
            bbox=_LABEL_BOX,
        )
    ax.set_title(
        "CA/Browser Forum maximum lifetime of a public TLS certificate, by issue date "
        "(ballot SC-081)",
        loc="left",
        fontsize=9,
    )
    ax.set_gid("policy")


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
        main, policy = fig.subplots(2, 1, height_ratios=[max(2.0, 0.36 * len(ordered) + 0.6), 1.5])
    else:
        main, policy = fig.add_subplot(), None

    if with_cert:
        lo = min(min(r.cert.not_valid_before_utc for r in with_cert), moment)  # type: ignore[union-attr]
        hi = max(max(r.cert.not_valid_after_utc for r in with_cert), moment)  # type: ignore[union-attr]
    else:
        lo, hi = moment - _dt.timedelta(days=30), moment + _dt.timedelta(days=30)
    span = max(hi - lo, _dt.timedelta(days=2))
    x_lo, x_hi = mdates.date2num(lo - span * 0.02), mdates.date2num(hi + span * 0.3)

    statuses: set[str] = set()
    unverified = False
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
            main.text(
                mdates.date2num(moment) + (x_hi - x_lo) * 0.01,
                y,
                _shorten(row.error or "no certificate"),
                va="center",
                fontsize=8,
                color="#333333",
            )
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
        _bar_label(main, text, y, start, end, x_lo, x_hi, 7.5)
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
        _policy_panel(policy, moment)
    return fig


# ----------------------------------------------------------------- handshake diagrams

#: Arrow colours: plaintext records (anyone on the path can read them) and encrypted ones.
PLAINTEXT_COLOR = OKABE_ITO["blue"]
ENCRYPTED_COLOR = OKABE_ITO["vermillion"]


def _pretty_version(version: str | None) -> str:
    """``"TLSv1.3"`` → ``"TLS 1.3"``."""
    if not version:
        return "TLS (version unknown)"
    return version.replace("TLSv", "TLS ").replace("SSLv", "SSL ")


@dataclass(frozen=True)
class FlightCount:
    """How a handshake used the network.

    A *flight* is a run of records one side sends before it must wait for the other
    (RFC 8446 §2 draws them as arrows). A *round trip* is a time the client had to wait
    for the server before it could send application data.
    """

    version: str | None
    flights: int  #: flights until both Finished messages were sent
    round_trips: int  #: server flights the client waited for, up to the server's Finished
    complete: bool  #: False when the capture stops before both Finished messages

    def __str__(self) -> str:
        rt = f"{self.round_trips} round trip" + ("s" if self.round_trips != 1 else "")
        return f"{_pretty_version(self.version)}: {rt} ({self.flights} flights)"


def _groups(events: Sequence[Any]) -> list[list[int]]:
    """Indexes of events, grouped into flights (consecutive records in one direction)."""
    groups: list[list[int]] = []
    for i, event in enumerate(events):
        if groups and events[groups[-1][0]].direction == event.direction:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _finished_events(events: Sequence[Any], version: str | None) -> tuple[int | None, int | None]:
    """Indexes of the events carrying the server's and the client's Finished.

    We read record *types*, which stay visible even when the contents are encrypted:

    * TLS 1.2 (RFC 5246 §7.4.9): each side's Finished is the first handshake record it
      sends after its ChangeCipherSpec.
    * TLS 1.3 (RFC 8446 §2): the server's Finished closes the flight that starts with
      its ServerHello; the client's Finished is its first encrypted record after that.
    """

    def first(start: int, direction: str, test: Any) -> int | None:
        for i in range(start, len(events)):
            if events[i].direction == direction and test(events[i]):
                return i
        return None

    if version == "TLSv1.3":
        hello = first(0, "s2c", lambda e: "ServerHello" in e.names)
        if hello is None:
            return None, None
        server = hello
        while server + 1 < len(events) and events[server + 1].direction == "s2c":
            server += 1  # the rest of the server's first flight (… Finished)
        client = first(hello, "c2s", lambda e: e.encrypted)
        return server, client
    fin = []
    for direction in ("s2c", "c2s"):
        ccs = first(0, direction, lambda e: e.record.content_type == 20)
        fin.append(
            None
            if ccs is None
            else first(ccs + 1, direction, lambda e: e.record.content_type == 22)
        )
    return fin[0], fin[1]


def _count(events: Sequence[Any], version: str | None) -> tuple[FlightCount, int]:
    groups = _groups(events)
    flight_of = {i: f for f, group in enumerate(groups) for i in group}
    server, client = _finished_events(events, version)
    if server is None or client is None:
        waits = sum(1 for g in groups if events[g[0]].direction == "s2c")
        return FlightCount(version, len(groups), waits, False), len(events) - 1
    last = max(server, client)
    waits = sum(1 for f in range(flight_of[server] + 1) if events[groups[f][0]].direction == "s2c")
    return FlightCount(version, flight_of[last] + 1, waits, True), last


def count_flights(capture: Any) -> FlightCount:
    """Count the flights and round trips of a captured handshake.

    >>> count_flights(capture_12)   # doctest: +SKIP
    FlightCount(version='TLSv1.2', flights=4, round_trips=2, complete=True)
    """
    return _count(capture.events(strict=False), capture.version)[0]


@dataclass(frozen=True)
class _Arrow:
    direction: str
    t: float
    label: str
    encrypted: bool
    flight: int


def _arrows(capture: Any, decrypted: Any = None) -> tuple[list[_Arrow], FlightCount, int, bool]:
    """One arrow per handshake message, or per record when we cannot name its contents.

    Returns (arrows, flight count, index of the last handshake arrow, guessed?).
    """
    events = capture.events(strict=False)
    count, last_event = _count(events, capture.version)
    flight_of = {i: f for f, group in enumerate(_groups(events)) for i in group}
    tls13 = capture.version == "TLSv1.3"
    exact: dict[tuple[str, int], Any] = {}
    if decrypted is not None:
        exact = {(r.direction, r.offset): r for r in decrypted.records}
    arrows: list[_Arrow] = []
    guessed = False
    last_arrow = -1
    for i, event in enumerate(events):
        flight = flight_of[i]
        named: list[tuple[str, int]]  # (name, bytes)
        plain = exact.get((event.direction, event.record.offset))
        if event.encrypted and plain is not None:
            if plain.messages:
                named = [(m.name, len(m.raw)) for m in plain.messages]
            elif plain.inner_type == 21:
                named = [(plain.summary(), event.size)]
            elif plain.inner_type == 23:
                named = [("application data", event.size)]
            else:
                named = [(plain.type_name, event.size)]
        elif len(event.messages) > 1:  # one record, several messages (coalesced)
            named = [(m.type_name, len(m.raw)) for m in event.messages]
        else:
            name = event.label.replace(" (encrypted)", "")
            if event.encrypted and tls13:
                name += "?"  # capture guessed the name from the record's position
                guessed = True
            named = [(name, event.size)]
        if len(named) == 1:
            named = [(named[0][0], event.size)]  # the whole record, header included
        for name, size in named:
            arrows.append(
                _Arrow(event.direction, event.t, f"{name} ({size} B)", event.encrypted, flight)
            )
        if i == last_event:
            last_arrow = len(arrows) - 1
    return arrows, count, last_arrow, guessed


def _draw_sequence(
    ax: Axes,
    capture: Any,
    *,
    decrypted: Any,
    timestamps: bool,
    handshake_only: bool,
    rows: int | None = None,
) -> FlightCount:
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    arrows, count, last_arrow, guessed = _arrows(capture, decrypted)
    if handshake_only and last_arrow >= 0:
        arrows = arrows[: last_arrow + 1]
    gap = 0.8  # extra room after the handshake, for the "handshake complete" line
    ys = [k + (gap if count.complete and 0 <= last_arrow < k else 0.0) for k in range(len(arrows))]
    n = max(ys[-1] + 1 if ys else 1.0, float(rows or 0))
    lanes = {"Client": 0.0, "Server": 1.0}
    slope = 0.55  # each arrow ends lower than it starts: time flows down the page

    # Flights: light alternating bands, numbered on the right.
    flights = sorted({a.flight for a in arrows})
    for number, flight in enumerate(flights, start=1):
        rows_in = [ys[k] for k, a in enumerate(arrows) if a.flight == flight]
        top, bottom = rows_in[0] - 0.3, rows_in[-1] + slope + 0.3
        if number % 2:
            ax.axhspan(top, bottom, color="#F2F2F2", zorder=0, linewidth=0)
        ax.text(
            1.33,
            (top + bottom) / 2,
            f"flight {number}",
            ha="right",
            va="center",
            fontsize=7.5,
            color="#666666",
            gid="flight-label",
        )

    for name, x in lanes.items():
        ax.plot([x, x], [-0.6, n + 0.1], color="#333333", linewidth=1.5, zorder=1, gid="lane")
        ax.text(
            x,
            -0.75,
            name,
            ha="center",
            va="bottom",
            fontsize=11,
            fontweight="bold",
            gid=f"lane:{name}",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#333333"},
        )

    for y, arrow in zip(ys, arrows, strict=True):
        start, end = (0.0, 1.0) if arrow.direction == "c2s" else (1.0, 0.0)
        colour = ENCRYPTED_COLOR if arrow.encrypted else PLAINTEXT_COLOR
        patch = FancyArrowPatch(
            (start, y),
            (end, y + slope),
            arrowstyle="-|>",
            mutation_scale=12,
            linewidth=1.6,
            linestyle="--" if arrow.encrypted else "-",
            color=colour,
            zorder=3,
            gid="arrow:" + ("encrypted" if arrow.encrypted else "plaintext"),
        )
        ax.add_patch(patch)
        ax.text(
            0.5,
            y + slope / 2 - 0.08,
            arrow.label,
            ha="center",
            va="bottom",
            fontsize=8.5,
            color="#111111",
            zorder=4,
            gid="arrow-label",
            bbox=_LABEL_BOX,
        )
        if timestamps:
            x = -0.04 if arrow.direction == "c2s" else 1.04
            ax.text(
                x,
                y,
                f"{arrow.t * 1000:.1f} ms",
                ha="right" if x < 0.5 else "left",
                va="center",
                fontsize=7,
                color="#666666",
                gid="timestamp",
            )

    if count.complete and 0 <= last_arrow < len(arrows):
        y = ys[last_arrow] + slope + 0.45
        ax.axhline(
            y,
            xmin=0.06,
            xmax=0.94,
            color="#333333",
            linestyle=":",
            linewidth=1,
            gid="handshake-done",
        )
        rt = f"{count.round_trips} round trip" + ("s" if count.round_trips != 1 else "")
        ax.text(
            0.5,
            y + 0.05,
            f"handshake complete: {rt}",
            ha="center",
            va="top",
            fontsize=8,
            style="italic",
            color="#333333",
            bbox=_LABEL_BOX,
        )

    ax.set_xlim(-0.35, 1.35)
    ax.set_ylim(n + 0.5, -1.3)  # time flows downwards
    ax.set_axis_off()
    handles = [
        Line2D([], [], color=PLAINTEXT_COLOR, linewidth=1.6, label="plaintext"),
        Line2D([], [], color=ENCRYPTED_COLOR, linewidth=1.6, linestyle="--", label="encrypted"),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    if guessed:
        ax.text(
            0.5,
            n + 0.45,
            "? = name guessed from the record's position (pass decrypted= for exact names)",
            ha="center",
            va="bottom",
            fontsize=7,
            color="#666666",
        )
    return count


def handshake_diagram(
    capture: Any,
    *,
    title: str | None = None,
    timestamps: bool = False,
    decrypted: Any = None,
    ax: Axes | None = None,
    handshake_only: bool = False,
) -> Figure:
    """Draw a captured TLS connection as a sequence diagram: Client and Server lanes.

    ``capture`` is a :class:`helpers.capture.Capture` (from ``capture_memory`` or a
    ``Relay``). Each arrow is one handshake message, or one record when its contents
    are encrypted and unknown, labelled with its size on the wire (record header
    included; a message's own size when several share one record). Blue solid arrows
    are plaintext, anyone on the path can read them; vermillion dashed arrows are
    encrypted. Shaded bands are *flights*: what one side sends before it waits.

    ``decrypted``: a :class:`helpers.tls13.Decrypted` for the same capture; encrypted
    records then get their real names (EncryptedExtensions, Certificate, ...).
    ``timestamps``: print each record's capture time next to the sender's lane.
    ``handshake_only``: stop at the last Finished (no tickets, data, close_notify).
    ``ax``: draw into an existing Axes (the function returns its figure).
    """
    if not hasattr(capture, "events"):
        raise PlotDataError(
            f"handshake_diagram() needs a Capture, not {type(capture).__name__}.",
            "Record one with helpers.capture.capture_memory(...) or a Relay.",
        )
    if ax is None:
        rows = len(capture.events(strict=False))
        fig = _new_figure(7.5, 1.8 + 0.48 * rows)
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    _draw_sequence(
        ax, capture, decrypted=decrypted, timestamps=timestamps, handshake_only=handshake_only
    )
    heading = title or f"{_pretty_version(capture.version)} handshake" + (
        f" ({capture.label})" if getattr(capture, "label", "") else ""
    )
    ax.set_title(heading, fontsize=11)
    return fig


def compare_handshakes(capture_12: Any, capture_13: Any, *, decrypted_13: Any = None) -> Figure:
    """TLS 1.2 and TLS 1.3 side by side, each titled with its version and round trips.

    Only the handshakes are drawn (up to the last Finished), at the same vertical
    scale, so the extra round trip of TLS 1.2 is visible as extra height: TLS 1.3 moved
    the key exchange into the first flight (key_share in ClientHello, RFC 8446 §4.2.8),
    so the server can answer with everything at once.
    """
    captures = (capture_12, capture_13)
    arrow_counts = []
    for capture in captures:
        arrows, _count_, last, _ = _arrows(capture)
        arrow_counts.append(last + 1 if last >= 0 else len(arrows))
    rows = max(arrow_counts)
    fig = _new_figure(13.0, 1.9 + 0.5 * rows)
    axes = fig.subplots(1, 2)
    for ax, capture, decrypted in zip(axes, captures, (None, decrypted_13), strict=True):
        count = _draw_sequence(
            ax, capture, decrypted=decrypted, timestamps=False, handshake_only=True, rows=rows
        )
        rt = f"{count.round_trips} round trip" + ("s" if count.round_trips != 1 else "")
        ax.set_title(
            f"{_pretty_version(count.version)}: {rt}, {count.flights} flights", fontsize=12
        )
    fig.suptitle(
        "Full handshakes compared (drawn from captured bytes)", fontsize=10, color="#444444"
    )
    return fig


# ----------------------------------------------------------------- handshake timeline

#: Segment colours on the handshake timeline.
TIMELINE_COLORS: dict[str, str] = {
    "tcp": "#BBBBBB",
    "c2s": OKABE_ITO["sky blue"],
    "s2c": OKABE_ITO["blue"],
}


def handshake_timeline(
    timings: Sequence[Any],
    *,
    title: str | None = None,
    model_tcp: bool = True,
) -> Figure:
    """Draw measured handshakes on a real time axis: one bar per connection.

    ``timings`` come from :func:`helpers.timing.measure_timeline`. Each bar starts with
    the TCP handshake, then one segment per *flight*, light blue when the client sends,
    dark blue when the server does, from the moment it was sent until it arrived. A
    black tick marks the moment the client's handshake was done and it could send its
    request. Dotted lines mark whole round trips (RTT = twice the relay's delay).

    ``model_tcp``: the relay cannot delay the TCP handshake (the kernel answers it), so
    by default it is drawn as one RTT, hatched and labelled "modelled". With
    ``model_tcp=False`` the measured (near-zero) connect time is drawn instead.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = list(timings)
    if not rows:
        raise PlotDataError(
            "handshake_timeline() got no timings.",
            "Measure some first: helpers.timing.measure_timeline(target).",
        )
    rtt = max(t.rtt for t in rows)
    fig = _new_figure(10.5, 1.6 + 0.95 * len(rows))
    ax = fig.add_subplot()
    ms = 1000.0
    height = 0.62
    ends = []
    for y, timing in enumerate(rows):
        tcp = timing.rtt if model_tcp else timing.connect
        shift = tcp - timing.connect  # flights were timed from the real (instant) connect
        ax.barh(
            y,
            tcp * ms,
            left=0,
            height=height,
            color=TIMELINE_COLORS["tcp"],
            edgecolor="#666666",
            hatch="//" if model_tcp else None,
            linewidth=0.6,
            gid="segment:tcp",
        )
        if model_tcp and tcp * ms > 25:
            ax.text(
                tcp * ms / 2,
                y,
                "TCP\n(modelled)",
                ha="center",
                va="center",
                fontsize=7,
                bbox=_LABEL_BOX,
            )
        done = tcp + timing.handshake
        ends.append(done)
        for flight in timing.flights:
            start, stop = flight.sent + shift, flight.arrived + shift
            colour = TIMELINE_COLORS[flight.direction]
            inside = min(stop, done) - start
            if inside > 0.05 * timing.rtt:  # less is clock skew between client and relay
                ax.barh(
                    y,
                    inside * ms,
                    left=start * ms,
                    height=height,
                    color=colour,
                    edgecolor="white",
                    linewidth=0.8,
                    gid=f"segment:{flight.direction}",
                )
            if stop > done:  # travels on after the client is done (TLS 1.3 client Finished)
                after = max(start, done)
                ax.barh(
                    y,
                    (stop - after) * ms,
                    left=after * ms,
                    height=height,
                    color=colour,
                    alpha=0.3,
                    edgecolor="white",
                    linewidth=0.8,
                    gid=f"segment:{flight.direction}:after",
                )
            ax.text(
                (start + stop) / 2 * ms,
                y,
                flight.label.replace(" … ", " …\n"),
                ha="center",
                va="center",
                fontsize=6.8,
                color="white" if flight.direction == "s2c" and stop <= done else "#111111",
                clip_on=True,
            )
        ax.plot(
            [done * ms, done * ms],
            [y - 0.42, y + 0.42],
            color="black",
            linewidth=2.2,
            solid_capstyle="butt",
            zorder=5,
            gid="handshake-done",
        )
    arrivals = [
        f.arrived + (t.rtt if model_tcp else t.connect) - t.connect for t in rows for f in t.flights
    ]
    right = max([*ends, *arrivals])
    for y, (timing, done) in enumerate(zip(rows, ends, strict=True)):
        ax.annotate(
            f"TLS: {timing.round_trips} RTT, {timing.handshake * ms:.0f} ms"
            + (f"\nwith TCP: {done * ms:.0f} ms" if model_tcp else ""),
            xy=(right * ms, y),
            xytext=(10, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
            fontweight="bold",
            gid="rtt-label",
        )
    ax.set_xlim(0, right * ms * 1.28)
    for k in range(1, int(right / rtt) + 2):
        x = k * rtt * ms
        if x > right * ms * 1.28:
            break
        ax.axvline(x, color="#999999", linestyle=":", linewidth=1, zorder=0, gid="rtt-grid")
        ax.text(x, -0.62, f"{k} RTT", ha="center", va="bottom", fontsize=8, color="#555555")
    labels = [t.name + ("\n(session_reused: True)" if t.resumed else "") for t in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=8.5)
    ax.set_ylim(len(rows) - 0.5, -0.75)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("milliseconds since the client started to connect")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [
        Patch(
            facecolor=TIMELINE_COLORS["tcp"],
            edgecolor="#666666",
            hatch="//" if model_tcp else None,
            label="TCP handshake" + (" (modelled: 1 RTT)" if model_tcp else ""),
        ),
        Patch(facecolor=TIMELINE_COLORS["c2s"], label="client → server flight"),
        Patch(facecolor=TIMELINE_COLORS["s2c"], label="server → client flight"),
        Patch(facecolor=TIMELINE_COLORS["c2s"], alpha=0.3, label="still in flight"),
        Line2D([], [], color="black", linewidth=2.2, label="client may send its request"),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    delay = rows[0].delay
    ax.set_title(
        title
        or f"Handshakes through a relay adding {delay * ms:.0f} ms each way "
        f"(1 RTT = {rtt * ms:.0f} ms)",
        loc="left",
        fontsize=11,
        pad=14,
    )
    return fig


# ----------------------------------------------------------------- server grades (notebook 08)

#: One colour per category of :func:`helpers.probe.grade`, in the order they are stacked.
GRADE_COLORS: dict[str, str] = {
    "protocol": OKABE_ITO["blue"],
    "key_exchange": OKABE_ITO["sky blue"],
    "cipher": OKABE_ITO["bluish green"],
}
_GRADE_BADGES = {
    "A+": OKABE_ITO["bluish green"],
    "A": OKABE_ITO["bluish green"],
    "B": OKABE_ITO["orange"],
    "C": OKABE_ITO["vermillion"],
    "D": OKABE_ITO["vermillion"],
    "E": OKABE_ITO["vermillion"],
    "F": OKABE_ITO["vermillion"],
    "T": OKABE_ITO["reddish purple"],
    "M": OKABE_ITO["reddish purple"],
}


def grade_chart(grades: Sequence[Any], *, title: str | None = None) -> Figure:
    """How each server's grade is built: weighted category scores, then the rules.

    Each bar stacks the three weighted category scores of a :class:`helpers.probe.Grade`
    (protocol × 0.3, key exchange × 0.3, cipher × 0.4), so its length is the total score;
    dotted lines mark the letter thresholds. The badge on the right is the final grade
    and, when a rule changed it, the text says which rule and what the score alone gave.
    """
    from matplotlib.patches import Patch

    from .probe import LETTERS, WEIGHTS

    items = list(grades)
    if not items:
        raise PlotDataError("grade_chart() needs at least one grade.", "Pass [probe.grade(scan)].")
    fig = _new_figure(11.0, 1.3 + 0.48 * len(items))
    ax = fig.add_subplot()
    names = [str(g.target) for g in items]
    y = list(range(len(items)))[::-1]
    for row, g in zip(y, items, strict=True):
        left = 0.0
        for key, value in (
            ("protocol", g.protocol),
            ("key_exchange", g.key_exchange),
            ("cipher", g.cipher),
        ):
            width = WEIGHTS[key] * value if g.score > 0 else 0.0
            ax.barh(row, width, left=left, height=0.62, color=GRADE_COLORS[key], edgecolor="white")
            left += width
        ax.text(g.score + 1, row, f"{g.score:.0f}", va="center", ha="left", fontsize=8)
        letter = str(g.letter)
        ax.text(
            112,
            row,
            letter,
            va="center",
            ha="center",
            fontsize=11,
            fontweight="bold",
            color="white",
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": _GRADE_BADGES.get(letter, _GREY),
                "edgecolor": "none",
            },
            gid=f"grade:{g.target}",
        )
        changed = [r.id for r, _ in g.applied if r.cap != "A+"]
        if letter != g.numeric_letter:
            why = ", ".join(changed) if changed else "rules"
            note = f"score alone: {g.numeric_letter}; {why}"
        else:
            note = "no rule changed it"
        ax.text(118, row, note, va="center", ha="left", fontsize=8, color="#444444")
    for minimum, letter in LETTERS[:-1]:
        ax.axvline(minimum, color="#999999", linestyle=":", linewidth=1, zorder=0)
        ax.text(
            minimum + 0.6,
            len(items) - 0.45,
            f"{letter} ≥ {minimum:.0f}",
            fontsize=7,
            color="#666666",
        )
    ax.set_yticks(y, names, fontsize=9)
    ax.set_xlim(0, 175)
    ax.set_ylim(-0.6, len(items) - 0.1)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel("weighted score (0–100)", loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_bounds(0, 100)
    labels = {
        "protocol": "protocol × 0.3",
        "key_exchange": "key exchange × 0.3",
        "cipher": "cipher × 0.4",
    }
    ax.legend(
        handles=[Patch(facecolor=c, label=labels[k]) for k, c in GRADE_COLORS.items()],
        loc="lower right",
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(1.0, 1.0),
        ncol=3,
    )
    ax.set_title(title or "How each grade is built (helpers.probe.grade)", loc="left", fontsize=11)
    return fig
