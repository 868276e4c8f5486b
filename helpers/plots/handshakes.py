"""Handshake sequence diagrams, drawn from captured bytes (notebook 01; compared in 06).

Theory of operation
-------------------
A diagram is drawn from a :class:`helpers.capture.Capture`: the bytes really sent on a
connection, cut into TLS records by :mod:`helpers.handshake`. One arrow per handshake
message (or per encrypted record whose contents we cannot read), labelled with its size
on the wire. Give it a :mod:`helpers.tls13` decryption and the encrypted arrows get
their real names; without one, a TLS 1.3 encrypted record is named from its position
and marked ``?``.

Time flows down the page: Client on the left, Server on the right, each arrow ending a
little lower than it starts. Shaded bands are the *flights* counted in :mod:`.flights`;
a dotted line marks where the handshake is complete. Blue solid arrows are plaintext,
vermillion dashed arrows are encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PlotDataError
from .flights import FlightCount, _count, _groups, _pretty_version
from .style import _LABEL_BOX, OKABE_ITO, _new_figure

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PLAINTEXT_COLOR", "ENCRYPTED_COLOR", "handshake_diagram", "compare_handshakes"]

#: Arrow colours: plaintext records (anyone on the path can read them) and encrypted ones.
PLAINTEXT_COLOR = OKABE_ITO["blue"]
ENCRYPTED_COLOR = OKABE_ITO["vermillion"]


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

    # Flights: light alternating bands, numbered on the right. "Flight" is a handshake
    # word: what one side sends before it waits for the other. After the handshake
    # (tickets, application data) the bands stay but are labelled "after".
    flights = sorted({a.flight for a in arrows})
    for number, flight in enumerate(flights, start=1):
        indexes = [k for k, a in enumerate(arrows) if a.flight == flight]
        rows_in = [ys[k] for k in indexes]
        top, bottom = rows_in[0] - 0.3, rows_in[-1] + slope + 0.3
        if number % 2:
            ax.axhspan(top, bottom, color="#F2F2F2", zorder=0, linewidth=0)
        after = count.complete and 0 <= last_arrow < indexes[0]
        ax.text(
            1.33,
            (top + bottom) / 2,
            "after" if after else f"flight {number}",
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
    note = "sizes: bytes on the wire, 5-byte record header included"
    if guessed:
        note += (
            "\nnames marked ? are guessed from the record's position; decrypting with the key "
            "log gives the real ones"
        )
    if arrows:
        ax.text(
            0.5,
            n + 0.45,
            note,
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
