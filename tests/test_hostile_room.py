"""A shared lab keeps serving a hostile room (issue 13, "Must hold": audit M1, M2, L3).

One run (about 20 s): ``python -m helpers.lab --share`` in its own process at ``ulimit -n
256`` (soft = hard, macOS's default, so the teacher cannot raise it; its stderr is the
teacher's terminal), visited by honest students on 127.0.0.1, first calmly, then for
:data:`SECONDS` while another process on 127.0.0.2-127.0.0.9 holds 300 slow-drip and
1,100 idle connections against the scenario ports and the join endpoint, reopening each
as soon as the teacher drops it (tests/room.py has the details). Each test below checks
one promise of that run; bench/hostile_room.py prints the same run's figures.

Thresholds; what the code before the fix measured (commit 66636b6, 2 shared cores, three
runs); and what a lab with fair eviction measured (8-15 % CPU, p99 25-41 ms):

* every honest visit gets its verdict within 5 s (before: 0/6, 2/7 and 16/63 visits);
* the teacher uses at most :data:`MAX_CPU_PERCENT` of one core while attacked (before:
  47-113 %, accept() failing with EMFILE in a loop);
* its stderr has no traceback and at most :data:`MAX_STDERR_LINES` lines (before: 609-945
  lines, 29-45 tracebacks);
* its descriptors and threads are back to the calm baseline within
  :data:`RECOVER_WITHIN` s of the attackers letting go (before: at once; the threads
  ended with their clients).
"""

from __future__ import annotations

import pytest

from . import room
from .reporting import report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(room.supported()), reason=room.supported() or ""),
]

NOFILE = 256  # macOS's default soft limit; the teacher gets it as its hard limit too
DRIP, IDLE = 300, 1100  # the room
SECONDS = 10.0  # honest students visit this long under attack
MAX_CPU_PERCENT = 30.0  # "no busy loop": a fixed lab ~8-14 %; a spinning one 47-91 %
MAX_STDERR_LINES = 40  # L3: a few rate-limited lines at most, never one per client
RECOVER_WITHIN = 15.0  # s: every deadline of the reactor is shorter than this


@pytest.fixture(scope="module")
def hostile(request: pytest.FixtureRequest) -> room.Room:
    result = room.run(
        nofile=NOFILE,
        drip=DRIP,
        idle=IDLE,
        seconds=SECONDS,
        calm_seconds=1.0,
        recover_within=RECOVER_WITHIN,
    )
    calm, hot = result.calm, result.attacked
    recovered = "no" if result.recovered_s is None else f"{result.recovered_s:.1f} s"
    report(
        request.config,
        [
            f"hostile room: honest clients served {hot.served}/{len(hot.visits)} "
            f"(p99 {hot.p99_ms():.0f} ms; calm {calm.served}/{len(calm.visits)}, p99 "
            f"{calm.p99_ms():.0f} ms) under {DRIP + IDLE} hostile connections at ulimit "
            f"{result.teacher_limit} ({result.peak} open at once at first, then median "
            f"{sorted(result.held)[len(result.held) // 2] if result.held else 0}, "
            f"{result.opened} reopened)",
            f"  teacher CPU {hot.cpu_percent:.0f}% of one core; fds/threads before "
            f"{result.before.fds}/{result.before.threads}, during (max) "
            f"{result.during_max.fds}/{result.during_max.threads}, after "
            f"{result.after.fds}/{result.after.threads} (back to baseline: {recovered}); "
            f"stderr {result.stderr_lines} lines, {result.tracebacks} tracebacks",
        ],
    )
    return result


def test_the_room_really_was_hostile(hostile: room.Room) -> None:
    """Guards the other tests against passing because the attack never happened."""
    assert hostile.teacher_limit == NOFILE
    assert hostile.calm.served == len(hostile.calm.visits) > 0, hostile.calm.failures()[:3]
    connected, lowest = hostile.connected, min(hostile.held, default=0)
    # (A lab that stops accepting leaves a few of them waiting for a SYN-ACK forever.)
    assert connected >= 0.9 * (DRIP + IDLE), f"only {connected} hostile connections got through"
    # A fixed lab drops them about as fast as they come back; they must keep coming back.
    assert lowest >= 100, f"the attack faded: only {lowest} hostile connections open at once"
    assert hostile.attack.get("hangups") == 20


def test_every_honest_student_is_served(hostile: room.Room) -> None:
    hot = hostile.attacked
    served, total = hot.served, len(hot.visits)
    failures = {v.target: v.detail for v in hot.failures()}
    why = "; ".join(f"{name}: {detail[:100]}" for name, detail in list(failures.items())[:4])
    assert served == total, f"{served}/{total} honest visits served under attack; {why}"
    never = set(hostile.targets) - {v.target for v in hot.visits}
    assert not never, f"never visited under attack: {sorted(never)}"


def test_no_busy_loop(hostile: room.Room) -> None:
    cpu = hostile.attacked.cpu_percent
    assert cpu <= MAX_CPU_PERCENT, f"the teacher used {cpu:.0f}% of one core while attacked"


def test_no_traceback_flood(hostile: room.Room) -> None:
    tracebacks, lines = hostile.tracebacks, hostile.stderr_lines
    tail = "\n".join(hostile.stderr.splitlines()[-12:])
    assert tracebacks == 0, f"{tracebacks} tracebacks on the teacher's stderr; it ends:\n{tail}"
    assert lines <= MAX_STDERR_LINES, f"{lines} lines on the teacher's stderr; it ends:\n{tail}"


def test_descriptors_and_threads_come_back(hostile: room.Room) -> None:
    assert hostile.recovered_s is not None, (
        f"{RECOVER_WITHIN:.0f} s after the attackers let go the teacher still has "
        f"{hostile.after.fds} fds and {hostile.after.threads} threads "
        f"(before: {hostile.before.fds} and {hostile.before.threads})"
    )
