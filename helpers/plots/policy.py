"""How long a public TLS certificate may live: CA/Browser Forum ballot SC-081 (notebook 03).

The Baseline Requirements (§6.3.2) cap the lifetime of a publicly trusted server
certificate by the day it is issued: 398 days since 2020-09-01, then 200, 100 and
finally 47 days (ballot SC-081). :data:`POLICY_STEPS` holds that schedule,
:func:`max_lifetime_days` reads it, and :func:`_policy_panel` draws it as the lower
panel of :func:`.expiry.expiry_gantt`: the reason automation (ACME) is no longer
optional.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from .style import _LABEL_BOX, OKABE_ITO, _date_axis, _now_line

if TYPE_CHECKING:  # imported lazily at run time: importing pyplot picks a backend
    from matplotlib.axes import Axes

__all__ = ["POLICY_STEPS", "max_lifetime_days"]

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


def _policy_start(now: _dt.datetime) -> _dt.datetime:
    """Where the policy panel should begin: a little before the step in force at ``now``."""
    day = now.date()
    current = max((d for d, _ in POLICY_STEPS if d <= day), default=POLICY_STEPS[0][0])
    return _dt.datetime.combine(current, _dt.time(), _dt.UTC) - _dt.timedelta(days=60)


def _policy_end() -> _dt.datetime:
    """Where the policy panel should end: a few months after the last announced step."""
    return _dt.datetime.combine(POLICY_STEPS[-1][0], _dt.time(), _dt.UTC) + _dt.timedelta(days=120)


def _policy_panel(ax: Axes, now: _dt.datetime, x_range: tuple[float, float] | None = None) -> None:
    """A step chart of the CA/B Forum maximum certificate lifetime (ballot SC-081).

    ``x_range`` (matplotlib date numbers) is the range of the chart above, so both
    share one date axis; by default the panel shows 2025 to 2030.
    """
    from matplotlib import dates as mdates

    if x_range is None:
        x_range = (
            mdates.date2num(_dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)),
            mdates.date2num(_dt.datetime(2030, 9, 1, tzinfo=_dt.UTC)),
        )
    start = mdates.num2date(x_range[0])
    end = mdates.num2date(x_range[1])
    xs = [start] + [
        _dt.datetime.combine(d, _dt.time(), _dt.UTC) for d, _ in POLICY_STEPS if start.date() < d
    ]
    xs = [x for x in xs if x < end]
    ys = [max_lifetime_days(x) or 0 for x in xs]
    xs.append(end)
    ys.append(ys[-1])
    ax.step(xs, ys, where="post", color=OKABE_ITO["blue"], linewidth=2)
    ax.fill_between(xs, ys, step="post", color=OKABE_ITO["blue"], alpha=0.12)
    for x, y in zip(xs[:-1], ys[:-1], strict=False):
        since = next((d for d, days in reversed(POLICY_STEPS) if d <= x.date()), None)
        words = f"{y} days" if since is None else f"{y} days\nfrom {since:%Y-%m-%d}"
        ax.annotate(
            words,
            xy=(mdates.date2num(x), y),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
            va="bottom",
            bbox=_LABEL_BOX,
            zorder=6,  # its box hides the now line (zorder 5) if they cross
            gid="policy-step",
        )
    ax.set_ylim(0, 560)
    ax.set_ylabel("max days", fontsize=8)
    ax.set_xlim(*x_range)
    _date_axis(ax)
    if start <= now <= end:
        _now_line(ax, now, label=False)
        today = max_lifetime_days(now)
        ax.annotate(
            f"issued today: at most {today} days",
            xy=(mdates.date2num(now), 470),
            xytext=(6, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=8,
            bbox=_LABEL_BOX,
            gid="policy-today",
        )
    ax.set_title(
        "CA/Browser Forum maximum lifetime of a public TLS certificate, by issue date "
        "(ballot SC-081; 398 days from 2020-09-01)",
        loc="left",
        fontsize=9,
    )
    ax.set_gid("policy")
