"""Checks for the exercises of notebook 10 · Certificates that renew themselves.

``finalize_request`` posts what the learner's function builds to a real ACME server of
the lab's kind (:class:`helpers.acme.server.AcmeServer`, HTTPS on loopback), with an
order made ready for it through HTTP-01, and downloads the certificate it issued.
``renewal_time`` asks about certificates dated years from today, so an answer that reads
the clock instead of the ``now`` it is given cannot pass (the pattern of notebook 03's
``alert_level``). Each check refuses answers that *work* once but are unsafe, and says why.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from typing import Any

from . import exercise

_UTC = _dt.UTC

# ------------------------------------------------------------------ renewal_time


def _aware_utc(got: Any, what: str) -> _dt.datetime:
    assert got is not None, f"for {what}: return a datetime (when to renew)"
    assert isinstance(got, _dt.datetime), (
        f"for {what} you returned {got!r}: return a datetime (when to renew), not "
        f"{type(got).__name__}"
    )
    assert got.tzinfo is not None and got.utcoffset() == _dt.timedelta(0), (
        f"for {what} you returned {got!r}, a naive or non-UTC datetime: return an aware UTC "
        "datetime, like the certificate's not_valid_after_utc and the now you are given "
        "(comparing naive and aware datetimes raises TypeError)"
    )
    return got


@exercise(
    "nb10",
    params=("cert", "window", "now"),
    hints=[
        "Without a window: cert.not_valid_before_utc + (not_valid_after_utc - "
        "not_valid_before_utc) * 2 / 3 is two thirds of the lifetime. If that is before now, "
        "return now.",
        "With a window: pick window.start + random.uniform(0, seconds of the window) (a "
        "timedelta(seconds=...)): a uniformly random moment, RFC 9773 §4.2. Not the start: "
        "every client of the CA would come back in the same second.",
        "max(picked, now) covers both 'the moment has passed' and 'the whole window is in "
        "the past'. Use the now argument, never datetime.now(): the check asks about other days.",
    ],
)
def renewal_time(answer):
    from ..acme.ari import RenewalWindow, two_thirds
    from ..pki import new_private_key, self_signed

    day, hour, second = _dt.timedelta(days=1), _dt.timedelta(hours=1), _dt.timedelta(seconds=1)
    real_now = _dt.datetime.now(_UTC)
    # A day about three years ahead: an answer that reads the clock instead of `now` sees
    # every test certificate as not yet issued, whenever the check runs.
    now = (real_now + 1000 * day).replace(hour=12, minute=0, second=0, microsecond=0)
    key = new_private_key()

    def cert(lifetime: _dt.timedelta, age: _dt.timedelta):
        """A certificate of ``lifetime`` that was issued ``age`` before ``now``."""
        start = now - age
        return self_signed(
            "renew.lab.localhost", key=key, not_before=start, not_after=start + lifetime
        ).cert

    def clocked(got: _dt.datetime) -> bool:
        return abs(got - real_now) < 10 * 60 * second

    wall_clock = (
        "; that is this computer's clock, not the `now` the check passed you (a day "
        f"{now:%Y-%m-%d}): use the now argument"
    )

    # 1. No ARI, a fresh 90-day certificate: two thirds of its lifetime.
    fresh = cert(90 * day, 10 * day)
    got = _aware_utc(answer(fresh, None, now), "a 90-day certificate without an ARI window")
    due = two_thirds(fresh)
    assert abs(got - due) <= second, (
        f"without an ARI window, a 90-day certificate issued on {fresh.not_valid_before_utc:%Y-%m-%d} "
        f"should be renewed at two thirds of its lifetime, {due:%Y-%m-%d %H:%M} UTC; you returned "
        f"{got:%Y-%m-%d %H:%M}" + (wall_clock if clocked(got) else "")
    )

    # 2. No ARI, two thirds already passed: now.
    late = cert(90 * day, 70 * day)
    got = _aware_utc(answer(late, None, now), "a 90-day certificate 70 days old, without ARI")
    assert abs(got - now) <= second, (
        f"a 90-day certificate 70 days old passed two thirds of its lifetime on "
        f"{two_thirds(late):%Y-%m-%d}, before now ({now:%Y-%m-%d %H:%M}): renew now, return now; "
        f"you returned {got:%Y-%m-%d %H:%M}"
        + (
            wall_clock
            if clocked(got)
            else " (a time in the past leaves the decision to whatever runs the schedule; did "
            "you compare with datetime.now() instead of now?)"
            if got < now
            else ""
        )
    )

    # 3. An ARI window ahead: uniformly random inside it, not one fixed moment.
    ahead = RenewalWindow(now + 55 * day, now + 57 * day)
    picks = [
        _aware_utc(answer(fresh, ahead, now), "an ARI window 55 to 57 days ahead")
        for _ in range(60)
    ]
    outside = [p for p in picks if not ahead.start <= p <= ahead.end]
    assert not outside, (
        f"the CA's window runs {ahead.start:%Y-%m-%d %H:%M} to {ahead.end:%Y-%m-%d %H:%M} UTC, "
        f"and you returned {outside[0]:%Y-%m-%d %H:%M}, outside it: follow the CA's window "
        "(RFC 9773 §4.2)" + (wall_clock if clocked(outside[0]) else "")
    )
    if all(abs(p - ahead.start) <= second for p in picks):
        raise AssertionError(
            "you always return the start of the window: every client of the CA whose "
            "certificates came out in the same second would come back in the same second, "
            "and knock it over. RFC 9773 §4.2 asks for a uniformly random moment in the window"
        )
    if all(abs(p - ahead.end) <= second for p in picks):
        raise AssertionError(
            "you always return the end of the window: every client at the same moment, and "
            "the last moment the CA asked for, with no time left if that attempt fails. Pick a "
            "uniformly random moment in the window (RFC 9773 §4.2)"
        )
    fractions = [(p - ahead.start) / (ahead.end - ahead.start) for p in picks]
    assert len({round(f, 6) for f in fractions}) >= 50, (
        "your moments repeat: 60 asks gave fewer than 50 different answers. Draw a new "
        "uniformly random moment each time (random.uniform), so clients spread out"
    )
    mean = statistics.fmean(fractions)
    assert 0.3 <= mean <= 0.7, (
        f"your 60 moments sit on average at {mean:.0%} of the window, not around the middle: "
        "draw them uniformly over the whole window (RFC 9773 §4.2), not from one end"
    )

    # 4. The CA moved the window earlier than two thirds (an incident): follow it.
    early = RenewalWindow(now + 2 * hour, now + 6 * hour)
    got = _aware_utc(answer(fresh, early, now), "a window the CA moved early")
    assert early.start <= got <= early.end, (
        f"the CA moved this certificate's window to {early.start:%Y-%m-%d %H:%M}–"
        f"{early.end:%H:%M} UTC, long before two thirds of its lifetime "
        f"({two_thirds(fresh):%Y-%m-%d}); you returned {got:%Y-%m-%d %H:%M}. When a CA must "
        "revoke certificates early (a mis-issuance), ARI is how it asks every client to renew "
        "in time: the window wins over two thirds" + (wall_clock if clocked(got) else "")
    )

    # 5. The window is over: renew now, never a time in the past.
    over = RenewalWindow(now - 3 * day, now - 2 * day)
    got = _aware_utc(answer(fresh, over, now), "an ARI window that ended 2 days ago")
    assert abs(got - now) <= second, (
        f"the ARI window ended on {over.end:%Y-%m-%d %H:%M} UTC, two days before now: renew "
        f"now (return now). You returned {got:%Y-%m-%d %H:%M}"
        + (
            wall_clock
            if clocked(got)
            else ": a time in the past leaves it to whatever runs the schedule to notice"
            if got < now
            else ""
        )
    )

    # 6. A window that began an hour ago: a moment in [now, end], never in the past.
    straddle = RenewalWindow(now - hour, now + hour)
    picks = [
        _aware_utc(answer(fresh, straddle, now), "a window from an hour ago to an hour ahead")
        for _ in range(40)
    ]
    past = [p for p in picks if p < now - second]
    assert not past, (
        f"the window runs from an hour ago to an hour ahead and you returned "
        f"{past[0]:%Y-%m-%d %H:%M:%S}, before now: a moment that has passed means renew now "
        "(RFC 9773 §4.2); return now instead" + (wall_clock if clocked(past[0]) else "")
    )
    assert all(p <= straddle.end + second for p in picks), (
        "for a window from an hour ago to an hour ahead you returned a moment after its end"
    )
    assert any(p > now + second for p in picks), (
        "for a window from an hour ago to an hour ahead you always said 'now': only the "
        "random moments that fall in the past mean now; the others are later in the window"
    )

    # 7. A 160-hour certificate (Let's Encrypt's shortlived profile), no ARI, and one
    #    whose window lies after two thirds: the CA's word still counts.
    short = cert(160 * hour, 20 * hour)
    got = _aware_utc(answer(short, None, now), "a 160-hour certificate without ARI")
    assert abs(got - two_thirds(short)) <= second, (
        f"a 160-hour certificate issued 20 hours ago should be renewed at two thirds, "
        f"{two_thirds(short):%Y-%m-%d %H:%M} UTC; you returned {got:%Y-%m-%d %H:%M}: the rule "
        "is relative to the lifetime, whatever its length"
    )
    later = RenewalWindow(now + 100 * hour, now + 110 * hour)
    got = _aware_utc(answer(short, later, now), "a window later than two thirds")
    assert later.start <= got <= later.end, (
        f"the CA's window ({later.start:%Y-%m-%d %H:%M}–{later.end:%H:%M} UTC) is where it wants "
        f"this certificate renewed, even past two thirds (it may be spreading its load); you "
        f"returned {got:%Y-%m-%d %H:%M}. With a window, follow the window"
    )


# ------------------------------------------------------------------ finalize_request


__all__ = ["renewal_time"]
