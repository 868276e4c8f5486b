"""Benchmark: a shared lab at ``ulimit -n 256`` under a hostile room (issue 13: M1, M2, L3).

Run from the project root::

    .venv/bin/python bench/hostile_room.py [--drip 300] [--idle 1100] [--nofile 256] [--seconds 10]

The teacher runs ``python -m helpers.lab --share`` in its own process, as a teacher does
(its stderr is the teacher's terminal), with ``RLIMIT_NOFILE`` soft = hard = ``--nofile``
(256 is macOS's default), so it cannot raise the limit. Honest students on 127.0.0.1 (``--students`` threads, one visit every
``--pause`` s, a fresh connection each) visit every scenario with a verified TLS client
and expect the verdict the lab's description (``GET /lab.json``) promises, and fetch
``GET /lab.json`` itself. They do
so twice, for ``--seconds`` each: first with nobody else around (the reference, same run),
then while another process on 127.0.0.2-127.0.0.9 holds ``--drip`` slow-drip connections
(one byte every 1-2 s, to the join endpoint and to the scenario ports) and ``--idle`` idle
ones, reopening each one 0.2-0.7 s after the teacher drops it.

Printed: honest clients served and their p99 under attack, the same with no attack and the
ratio of the two p99s; the teacher's CPU (% of one core) in both phases; its descriptors
and threads before, during (largest seen) and after the attackers let go, and how long it
took to get back; what the teacher wrote on its terminal.

Not a test (tests/test_hostile_room.py asserts the same scenario): the numbers depend on
the machine. Only loopback is used; every process the script starts is stopped by its PID.
The kit is tests/room.py, loaded from its file.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _room_kit():
    spec = importlib.util.spec_from_file_location("room_kit", ROOT / "tests" / "room.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["room_kit"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drip", type=int, default=300, help="slow-drip connections")
    parser.add_argument("--idle", type=int, default=1100, help="idle connections")
    parser.add_argument("--nofile", type=int, default=256, help="the teacher's fd limit")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--students", type=int, default=3, help="honest client threads")
    parser.add_argument("--pause", type=float, default=0.2, help="s between a student's visits")
    parser.add_argument("--timeout", type=float, default=5.0, help="an honest client's timeout")
    args = parser.parse_args()

    room = _room_kit()
    why = room.supported()
    if why:
        print(f"cannot run here: {why}")
        return 0
    r = room.run(
        nofile=args.nofile,
        drip=args.drip,
        idle=args.idle,
        seconds=args.seconds,
        calm_seconds=args.seconds,
        students=args.students,
        pause=args.pause,
        timeout=args.timeout,
    )
    calm, hot = r.calm, r.attacked
    held = int(statistics.median(r.held)) if r.held else 0
    print(
        f"honest clients served: {hot.served}/{len(hot.visits)}, p99 {hot.p99_ms():.0f} ms, "
        f"under {args.drip + args.idle} hostile connections at ulimit {r.teacher_limit}"
    )
    print(
        f"no attack, same run:   {calm.served}/{len(calm.visits)}, p99 {calm.p99_ms():.0f} ms"
        f"   ->  ratio p99 attacked / calm: {hot.p99_ms() / calm.p99_ms():.1f}"
    )
    print(
        f"hostile: {args.drip} slow-drip + {args.idle} idle, {r.connected} of them reached the "
        f"teacher, at most {r.peak} open at once; while attacked median {held} open at once "
        f"(min {min(r.held, default=0)}), "
        f"{r.opened} (re)opened in {hot.seconds:.0f} s; in all {r.attack.get('dropped', 0)} "
        f"dropped by the teacher, {r.attack.get('failed', 0)} connects failed, "
        f"{r.attack.get('hangups', 0)} half-request hang-ups"
    )
    print(
        f"teacher CPU: {calm.cpu_percent:.0f}% of one core with no attack, "
        f"{hot.cpu_percent:.0f}% under attack"
    )
    recovered = "not within 20 s" if r.recovered_s is None else f"in {r.recovered_s:.1f} s"
    print(
        f"teacher fds/threads: before {r.before.fds}/{r.before.threads}, "
        f"during (max) {r.during_max.fds}/{r.during_max.threads}, "
        f"after {r.after.fds}/{r.after.threads} (back to baseline {recovered})"
    )
    print(f"teacher stderr (its terminal): {r.stderr_lines} lines, {r.tracebacks} tracebacks")
    for line in r.stderr.splitlines()[:3]:
        print(f"  | {line[:150]}")
    failed = {}
    for v in hot.failures():
        failed.setdefault(v.target, v.detail)
    for name, detail in list(failed.items())[:5]:
        print(f"  not served: {name}: {detail[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
