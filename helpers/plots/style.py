"""Colours and the drawing bits every figure in :mod:`helpers.plots` shares (notebook 01).

Read this file to see how the figures keep their promises (listed in
:mod:`helpers.plots`): :func:`_new_figure` is the one place a figure is made, created
through pyplot and released from it at once; nothing here touches ``rcParams`` or
styles. The palette is Okabe–Ito, so colour stays readable with colour blindness, and
every figure pairs colour with a second cue (labels, hatches, legends).

The date-axis helpers (:func:`_date_axis`, :func:`_now_line`, :func:`_bar_label`) serve
the certificate figures of notebooks 02 and 03: :mod:`.chain`, :mod:`.expiry` and
:mod:`.policy`.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["OKABE_ITO"]

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
