"""Benchmark: a room of students on the classroom's JupyterHub, all running notebook 02 at once.

Run from the project root, after ``make hub`` has built the classroom (or from ``make bench``)::

    .venv/bin/python bench/hub.py [--students 12]

What happens, all on loopback:

1. The teacher's shared lab starts in this process (``helpers.lab.Lab`` with its join endpoint,
   as ``python -m helpers.lab --share`` serves it), so the bench can count the TLS connections the
   lab accepts. Its capacity is measured first: a burst (3 s, ``--burst``) of full handshakes
   + ``GET /`` from two worker processes of 8 threads each, with nothing else running.
2. JupyterHub starts as ``make hub`` starts it (classroom/hubctl.py, background mode), joined to
   that lab through ``TLS_COURSE_LAB``.
3. One student alone: created through the hub's REST API, given a token, their server started;
   they run every code cell of notebook 02 in order through their own server's kernel API
   (the websocket JupyterLab uses). That is the baseline for the ratio.
4. N students (default 12): created, servers started in parallel, kernels ready; then, released
   together, every student runs notebook 02 cell by cell at the same time.

Printed: students, cells executed, failures (goal 0: an error, a failed reply or anything on
stderr counts), p50/p99 cell latency and the ratio to the student alone, peak memory (PSS of the
hub, the proxy, every server and kernel, and this process with the lab), memory per student, and
the lab's handshakes per second during the run against its measured capacity. The last line is
the same as one JSON object (tests/test_hub.py reads it).

How it scales (12 students on the 2-core, 24 GiB reference machine, two runs on 2026-12-06 with
other jobs running; the output's "scaling" line recomputes this from each run): about 220 MiB per
student (server + kernel after notebook 02, PSS) plus about 0.25 GiB fixed (hub, proxy, lab), so
memory alone would allow ~100 students in 24 GiB. CPU is the limit: twelve servers starting at once
were ready in 21-24 s, and notebook 02 took the room 11-13 s against 2.1-2.3 s for one student
(5.3-5.6x, about N / cores). The lab is not the limit: the room used 90-104 of the 770-1260
handshakes per second it served alone (8-12 %).
Size a real room's machine by cores (one per 4-6 students working at the same moment) and give
each student 512 MiB (TLJH ``limits.memory``, Z2JH ``singleuser.memory.limit``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import multiprocessing as mp
import os
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from helpers.lab import Lab
    from tests.hub_driver import Hub

# Only the standard library at the top: the capacity burst's worker processes (spawned, so they
# import this file again) start in a fraction of a second. The rest is imported in main().

NOTEBOOK = "notebooks/02_validating_certificates_with_requests.ipynb"
BURST_PROCESSES, BURST_THREADS = 2, 8


@functools.cache
def driver() -> ModuleType:
    """tests/hub_driver.py, the REST + websocket driver tests/test_hub.py uses too."""
    spec = importlib.util.spec_from_file_location("hub_driver", ROOT / "tests" / "hub_driver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hub_driver"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def code_cells() -> list[str]:
    import nbformat

    nb = nbformat.read(ROOT / NOTEBOOK, as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


# ------------------------------------------------------------------ the lab's capacity
def _visit(ctx: ssl.SSLContext, host: str, port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            while tls.recv(65536):
                pass


def _burst_worker(host: str, port: int, cafile: str, seconds: float, queue) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    counts = [0] * BURST_THREADS
    stop_at = time.perf_counter() + seconds

    def loop(i: int) -> None:
        while time.perf_counter() < stop_at:
            _visit(ctx, host, port)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(BURST_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(sum(counts))


def lab_capacity(lab: Lab, seconds: float) -> float:
    """Handshakes (+ GET /) per second the lab serves to a burst from other processes."""
    spawn = mp.get_context("spawn")
    queue = spawn.Queue()
    args = (lab.host("valid"), lab.port("valid"), str(lab.ca_bundle), seconds, queue)
    workers = [spawn.Process(target=_burst_worker, args=args) for _ in range(BURST_PROCESSES)]
    for w in workers:
        w.start()
    total = sum(queue.get(timeout=120) for _ in workers)
    for w in workers:
        w.join()
    return total / seconds


def lab_accepted(lab: Lab) -> int:
    """Connections the lab's servers have accepted so far (the reactor's counter)."""
    return lab.accepted


# ------------------------------------------------------------------ students
def student(hub: Hub, name: str, cells: list[str], gate: threading.Barrier | None, out: dict):
    Kernel = driver().Kernel

    record: dict = {"latencies": [], "failures": [], "cells": 0}
    out[name] = record
    kernel = None
    try:
        hub.create_user(name)
        token = hub.user_token(name)
        record["spawn_s"] = hub.start_server(name)
        record["pid"] = hub.server_pid(name)
        kernel = Kernel(hub, name, token, NOTEBOOK)
        kernel.execute("pass")  # the kernel is up and answering
    except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the room
        record["failures"].append(f"setup: {exc!r}")
    if gate is not None:
        gate.wait()
    if kernel is None:
        return
    t0 = time.perf_counter()
    try:
        for index, code in enumerate(cells):
            result = kernel.execute(code)
            record["cells"] += 1
            record["latencies"].append(result.seconds)
            if not result.ok:
                record["failures"].append(f"cell {index}: {result.status} {result.problems}")
    except Exception as exc:  # noqa: BLE001
        record["failures"].append(f"cell {record['cells']}: {exc!r}")
    finally:
        record["run_s"] = time.perf_counter() - t0
        kernel.close()


class PeakMemory(threading.Thread):
    """Samples the PSS of the hub's process tree and this process (the lab) every 0.5 s."""

    def __init__(self, hub: Hub):
        super().__init__(daemon=True)
        self.hub, self.peak, self.stopping = hub, 0, threading.Event()

    def run(self) -> None:
        import psutil

        hub_driver = driver()
        while not self.stopping.wait(0.5):
            pids = self.hub.pids() + [psutil.Process().pid]
            self.peak = max(self.peak, hub_driver.memory_pss(pids))


T0 = time.perf_counter()


def phase(text: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    import psutil

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--state", default=None, help="hub state directory (default: a temp dir)")
    parser.add_argument(
        "--burst", type=float, default=3.0, help="seconds of the lab-capacity burst"
    )
    args = parser.parse_args()

    from helpers.lab import Lab
    from helpers.lab.remote import ShareServer

    hub_driver = driver()
    Hub = hub_driver.Hub
    # SIGTERM (a test's timeout, Ctrl-C's cousin) unwinds like Ctrl-C: the finally blocks below
    # stop the hub, every student's server and the lab by their PIDs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    why = hub_driver.missing()
    if why:
        print(f"bench/hub.py: {why}", file=sys.stderr)
        return 2
    cells = code_cells()
    state = Path(args.state or tempfile.mkdtemp(prefix="bench-hub-"))
    MiB = 2**20
    started: list[int] = []
    with Lab(bind="127.0.0.1") as lab:
        share = ShareServer(lab, bind="127.0.0.1", port=0).start()
        try:
            phase("lab up; measuring its capacity")
            capacity = lab_capacity(lab, args.burst)
            phase("starting the hub")
            hub = Hub(state=state / "hub", lab=share.join_url("127.0.0.1")).start()
            memory = PeakMemory(hub)
            memory.start()
            try:
                phase("one student alone")
                solo: dict = {}
                student(hub, "solo", cells, None, solo)
                hub.stop_server("solo")
                phase(f"{args.students} students")
                names = [f"student{i:02d}" for i in range(args.students)]
                room: dict = {}
                gate = threading.Barrier(len(names) + 1)
                threads = [
                    threading.Thread(target=student, args=(hub, n, cells, gate, room), daemon=True)
                    for n in names
                ]
                t_ready = time.perf_counter()
                for t in threads:
                    t.start()
                gate.wait()
                phase("all ready: notebook 02, everyone at once")
                ready_s = time.perf_counter() - t_ready
                accepted_before, t_run = lab_accepted(lab), time.perf_counter()
                for t in threads:
                    t.join()
                run_s = time.perf_counter() - t_run
                lab_rate = (lab_accepted(lab) - accepted_before) / run_s
                per_student = [
                    hub_driver.memory_pss(hub_driver.tree(r.get("pid"))) / MiB
                    for r in room.values()
                    if r.get("pid")
                ]
                started = hub.pids()
            finally:
                memory.stopping.set()
                phase("stopping the hub")
                hub.stop()
                phase("stopped")
        finally:
            share.stop()
    leftover = hub_driver.alive(started)

    latencies = [x for r in room.values() for x in r["latencies"]]
    failures = [f"{n}: {f}" for n, r in {**solo, **room}.items() for f in r["failures"]]
    solo_p50 = statistics.median(solo["solo"]["latencies"]) if solo["solo"]["latencies"] else 0
    p50 = percentile(latencies, 50) if latencies else 0.0
    p99 = percentile(latencies, 99) if latencies else 0.0
    spawns = [r["spawn_s"] for r in room.values() if "spawn_s" in r]
    result = {
        "students": args.students,
        "cells_per_student": len(cells),
        "cells_executed": sum(r["cells"] for r in room.values()),
        "failures": len(failures),
        "p50_ms": round(p50 * 1000),
        "p99_ms": round(p99 * 1000),
        "solo_p50_ms": round(solo_p50 * 1000),
        "solo_run_s": round(solo["solo"].get("run_s", 0), 1),
        "solo_cells_executed": solo["solo"]["cells"],
        "ratio_p50_to_solo": round(p50 / solo_p50, 2) if solo_p50 else None,
        "room_run_s": round(run_s, 1),
        "ratio_run_to_solo": round(run_s / solo["solo"]["run_s"], 2)
        if solo["solo"].get("run_s")
        else None,
        "ready_s": round(ready_s, 1),
        "spawn_s_max": round(max(spawns), 1) if spawns else None,
        "peak_memory_MiB": round(memory.peak / MiB),
        "memory_per_student_MiB": round(statistics.median(per_student)) if per_student else None,
        "lab_handshakes_per_s": round(lab_rate, 1),
        "lab_capacity_per_s": round(capacity),
        "leftover_processes": leftover,
    }
    print(
        f"students: {args.students}, each running notebook 02 ({len(cells)} code cells) at the same time"
    )
    print(f"cells executed: {result['cells_executed']} / {args.students * len(cells)}; "
          f"failures: {len(failures)} (goal 0)")  # fmt: skip
    print(f"cell latency: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; one student alone: "
          f"p50 {result['solo_p50_ms']} ms, notebook in {result['solo_run_s']} s; the room's "
          f"notebook took {result['room_run_s']} s ({result['ratio_run_to_solo']}x alone, "
          f"p50 {result['ratio_p50_to_solo']}x)")  # fmt: skip
    print(f"servers ready (create + spawn + kernel, in parallel): {result['ready_s']} s, "
          f"slowest spawn {result['spawn_s_max']} s")  # fmt: skip
    print(f"peak memory (hub, proxy, servers, kernels, lab): {result['peak_memory_MiB']} MiB; "
          f"per student (server + kernel after notebook 02): {result['memory_per_student_MiB']} MiB")  # fmt: skip
    print(f"lab: {result['lab_handshakes_per_s']} handshakes/s during the run; capacity "
          f"{result['lab_capacity_per_s']}/s (burst, measured above) ->  "
          f"{100 * lab_rate / capacity:.1f}% used")  # fmt: skip
    total = psutil.virtual_memory().total
    per = result["memory_per_student_MiB"] or 1
    fixed = max(0, result["peak_memory_MiB"] - per * args.students)
    by_memory = int((total / MiB - fixed) / per)
    by_lab = int(capacity / (lab_rate / args.students)) if lab_rate else None
    print(f"scaling: memory {per} MiB per student + ~{fixed} MiB fixed -> ~{by_memory} students in "
          f"{total / 2**30:.0f} GiB; the lab could take ~{by_lab} students working at this pace; "
          f"CPU ({os.cpu_count()} cores) is the limit: the room's notebook took "
          f"{result['ratio_run_to_solo']}x as long as one student's")  # fmt: skip
    for line in failures[:10]:
        print("FAILED", line)
    if leftover:
        print(f"LEFT RUNNING: {leftover}")
    print(json.dumps(result))
    return 0 if not failures and not leftover else 1


if __name__ == "__main__":
    sys.exit(main())
