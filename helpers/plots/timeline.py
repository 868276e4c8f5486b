"""Measured handshakes on a real time axis, one bar per connection (notebook 06).

Theory of operation
-------------------
The timeline is drawn from :func:`helpers.timing.measure_timeline`: wall-clock
measurements of real connections through a relay that delays every packet, so a round
trip is long enough to see. Where :mod:`.handshakes` counts flights, this figure shows
what they cost: each flight is a segment from the moment it was sent until it arrived,
and dotted lines mark whole round trips (RTT = twice the relay's delay). A resumed row
says what resumption saved against the full handshake of the same version: a whole
round trip in TLS 1.2, only the certificate and the signature in TLS 1.3.

The relay cannot delay the TCP handshake (the kernel answers it), so by default that
first round trip is *modelled*: drawn as one RTT, hatched and labelled so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import PlotDataError
from .style import _LABEL_BOX, OKABE_ITO, _new_figure

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.figure import Figure

__all__ = ["TIMELINE_COLORS", "handshake_timeline"]


def _version_of(timing: Any) -> str | None:
    return getattr(timing, "version", None)


def _versus_full(timing: Any, rows: Sequence[Any]) -> str:
    """For a resumed row: what resumption saved against the full handshake of its version.

    TLS 1.2's abbreviated handshake (RFC 5246 §7.3) is one round trip shorter than its
    full handshake; TLS 1.3 resumption (RFC 8446 §2.2) keeps the round trip and saves the
    certificate and the signature.
    """
    if not timing.resumed:
        return ""
    full = next((t for t in rows if not t.resumed and _version_of(t) == _version_of(timing)), None)
    if full is None:
        return ""
    saved = full.round_trips - timing.round_trips
    if saved > 0:
        return f"\n{saved} RTT less than full"
    return "\nno RTT saved vs full"


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
    fig = _new_figure(10.5, 1.6 + 1.0 * len(rows))
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
            + (f"\nwith TCP: {done * ms:.0f} ms" if model_tcp else "")
            + _versus_full(timing, rows),
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
