"""How each server's grade is built, as a chart (notebook 08).

Theory of operation
-------------------
The chart is drawn from :func:`helpers.probe.grade` results: the weighted category
scores of real scans (protocol, key exchange, cipher), stacked so a bar's length is the
total score, and the rules that capped the letter. The weights and letter thresholds
are read from :mod:`helpers.probe` itself (imported when the chart is drawn), so the
picture cannot drift from the grading it explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import PlotDataError
from .style import _GREY, OKABE_ITO, _new_figure

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.figure import Figure

__all__ = ["GRADE_COLORS", "grade_chart"]

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

    from ..probe import LETTERS, WEIGHTS

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
