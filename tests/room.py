"""A hostile classroom against a shared lab: the kit behind tests/test_hostile_room.py and
bench/hostile_room.py (issue 13, audit findings M1, M2, L3).

Three parts, all on loopback:

* :class:`Teacher`: ``python -m helpers.lab --share --json`` in its own process, with
  ``RLIMIT_NOFILE`` soft = hard = 256 (macOS's default) set before it starts, so it cannot
  raise the limit itself. :meth:`Teacher.usage` reads its CPU time, descriptors and
  threads from ``/proc``.
* :class:`Attack`: another process (this file run as a script) that holds slow-drip and
  idle connections against the teacher from 127.0.0.2-127.0.0.9, reopening each one a
  moment after the teacher drops it, as a hostile student would. It first sends a few
  half requests to the join endpoint and hangs up (the L3 traceback trigger).
* :class:`Honest`: paced students on 127.0.0.1, each visit a fresh connection: a verified
  TLS client per scenario that must reach the verdict the lab's JSON promises
  (:class:`helpers.lab.expect.Expect`), and ``GET /lab.json`` that must answer 200 with
  the description of the lab whose CA fingerprint the teacher printed.

Linux only (``/proc``, ``epoll``); callers skip elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import queue
import random
import re
import resource
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.lab.expect import Expect

ROOT = Path(__file__).resolve().parent.parent
ATTACK_ADDRESSES = tuple(f"127.0.0.{n}" for n in range(2, 10))
REOPEN_AFTER = (0.2, 0.7)  # s a hostile student waits before reopening a dropped connection
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2+


def supported() -> str | None:
    """Why this machine cannot run the room (``None`` when it can)."""
    if not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists():
        return "needs Linux /proc to read the teacher's CPU time, descriptors and threads"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        return f"the attacker needs ~1,500 descriptors and the hard limit here is {hard}"
    return None


# --------------------------------------------------------------------------- the teacher
@dataclass(frozen=True)
class Usage:
    """One look at a process: CPU seconds so far (user + system), open fds, threads."""

    cpu_s: float
    fds: int
    threads: int


def usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Usage(ticks / os.sysconf("SC_CLK_TCK"), fds, threads)


class Teacher:
    """The lab CLI with ``--share``, as a teacher on a Mac would run it (``ulimit -n 256``).

    ``terminal=True`` (the default) runs it as a teacher does, without ``--json``: its
    stderr is then what the teacher's terminal shows (L3), and the test learns the lab
    the way a student does, from ``GET /lab.json`` on the join port it chose, checked
    against the CA fingerprint the teacher's screen shows. ``terminal=False`` reads the
    ``--json`` line instead. :attr:`info` has the ``--json`` shape either way.
    """

    def __init__(
        self, nofile: int = 256, directory: str | None = None, terminal: bool = True
    ) -> None:
        self.nofile = nofile
        self.directory = directory
        self.terminal = terminal
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.screen = ""  # what the teacher's terminal mode printed on stdout
        self._stderr = tempfile.TemporaryFile(mode="w+", prefix="teacher-stderr-")
        self._lines: queue.Queue[str] | None = None
        self._ca = tempfile.NamedTemporaryFile(prefix="teacher-ca-", suffix=".pem")  # noqa: SIM115

    def _limit(self) -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        port = _free_port() if self.terminal else 0  # without --json we must know it
        args = [sys.executable, "-m", "helpers.lab", "--share", "--share-port", str(port)]
        args += ["--bind", "127.0.0.1"] + ([] if self.terminal else ["--json"])
        if self.directory:
            args += ["--dir", self.directory]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            preexec_fn=self._limit,  # noqa: PLW1509 - setrlimit only, no threads involved
        )
        deadline = time.monotonic() + timeout
        try:
            if self.terminal:
                self.info = self._from_screen(port, deadline)
            else:
                self.info = json.loads(self._line(deadline))
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            self.stop()
            why = f"the teacher did not start ({exc}): {self.stderr()[-2000:]}"
            raise RuntimeError(why) from exc
        return self.info

    def _line(self, deadline: float) -> str:
        """The teacher's next line on stdout (a thread reads: select() cannot see what a
        text-mode pipe has already buffered)."""
        assert self.proc is not None and self.proc.stdout is not None
        if self._lines is None:
            self._lines = queue.Queue()
            stdout, lines = self.proc.stdout, self._lines
            threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
        try:
            return self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError("nothing more on its stdout") from None

    def _from_screen(self, port: int, deadline: float) -> dict[str, Any]:
        lines: list[str] = []
        while not lines or "Serving until Ctrl-C" not in lines[-1]:
            lines.append(self._line(deadline))
        self.screen = "".join(lines)
        shown = re.search(r"SHA-256 fingerprint: ([0-9A-F]{2}(?::[0-9A-F]{2}){31})", self.screen)
        if shown is None:
            raise RuntimeError("no CA fingerprint on the teacher's screen")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/lab.json")
            body = conn.getresponse().read()
        finally:
            conn.close()
        description = _find(json.loads(body), "scenarios")
        ca_pem = description["ca_pem"].encode()
        der = ssl.PEM_cert_to_DER_cert(ca_pem.decode())
        digest = hashlib.sha256(der).hexdigest().upper()
        if ":".join(digest[i : i + 2] for i in range(0, 64, 2)) != shown.group(1):
            raise RuntimeError("the served CA is not the one whose fingerprint the teacher shows")
        self._ca.write(ca_pem)
        self._ca.flush()
        return {
            "ca_bundle": self._ca.name,
            "scenarios": description["scenarios"],
            "share": {"port": port, "fingerprint": shown.group(1)},
        }

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def usage(self) -> Usage:
        return usage(self.pid)

    def limit(self) -> int:
        """The soft fd limit the running teacher has (to show that 256 held)."""
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        return -1

    def stderr(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def settle(self, timeout: float = 8.0) -> Usage:
        """Wait until fds and threads stop changing (lingering connections closed)."""
        deadline = time.monotonic() + timeout
        last = self.usage()
        while time.monotonic() < deadline:
            time.sleep(0.4)
            now = self.usage()
            if (now.fds, now.threads) == (last.fds, last.threads):
                return now
            last = now
        return last

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # the process we started, by its PID
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Teacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        self._ca.close()


def _free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999), so that no outgoing
    connection takes it between this check and the teacher's bind."""
    rng = random.Random()  # noqa: S311 - a port number, not a secret
    for _ in range(100):
        port = rng.randrange(20000, 30000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


def _find(document: Any, key: str) -> dict[str, Any]:
    """The JSON object holding ``key``, looking inside nested objects and inside strings
    that are JSON themselves (a signed envelope carries its description as a string)."""
    todo = [document]
    while todo:
        item = todo.pop()
        if isinstance(item, str) and item.lstrip().startswith("{"):
            with contextlib.suppress(ValueError):
                todo.append(json.loads(item))
        elif isinstance(item, dict):
            if key in item:
                return item
            todo.extend(item.values())
    raise KeyError(f"no {key!r} in the description")


# --------------------------------------------------------------------------- honest students
@dataclass(frozen=True)
class Target:
    """What an honest student visits: a scenario (``kind="tls"``) or the join endpoint."""

    name: str
    kind: str
    host: str
    port: int
    expect: Expect | None = None


def targets(info: dict[str, Any]) -> list[Target]:
    """Every scenario of the lab's ``--json`` line, plus ``GET /lab.json``."""
    out = [
        Target(name, "tls", s["host"], s["port"], _expect(s["expect"]))
        for name, s in info["scenarios"].items()
    ]
    out.append(Target("lab.json", "join", "127.0.0.1", info["share"]["port"]))
    return out


def _expect(promised: dict[str, Any]) -> Expect:
    """The verdict the lab promises a default Python client (its JSON ``expect``)."""
    return Expect(promised["ok"], promised.get("verify_code"), promised.get("error"))


@dataclass(frozen=True)
class Visit:
    target: str
    served: bool
    seconds: float
    detail: str = ""


def _tls_visit(target: Target, ctx: ssl.SSLContext, timeout: float) -> BaseException | None:
    """Handshake + GET / + read to the end; the verdict is the exception (None: success)."""
    try:
        with socket.create_connection(("127.0.0.1", target.port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=target.host) as tls:
                request = f"GET / HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\n\r\n"
                tls.sendall(request.encode())
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
    except (OSError, ssl.SSLError) as exc:  # the verdict *is* the exception
        return exc
    if not data.startswith(b"HTTP/1.1 200 "):
        return RuntimeError(f"unexpected answer {data[:40]!r}")
    return None


def _join_visit(target: Target, fingerprint: str, timeout: float) -> str:
    """``GET /lab.json``: '' when it is a 200 with this lab's description, else why not."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=timeout)
    try:
        conn.request("GET", "/lab.json", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return repr(exc)
    finally:
        conn.close()
    if response.status != 200:
        return f"HTTP {response.status}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:40]!r}"
    if not isinstance(document, dict) or fingerprint not in body.decode("utf-8", "replace"):
        return "a JSON document without this lab's CA fingerprint"
    return ""


def visit(target: Target, cafile: str, fingerprint: str, timeout: float = 5.0) -> Visit:
    """One honest student, one fresh connection, timed."""
    start = time.perf_counter()
    if target.kind == "join":
        why = _join_visit(target, fingerprint, timeout)
    else:
        ctx = ssl.create_default_context(cafile=cafile)
        exc = _tls_visit(target, ctx, timeout)
        assert target.expect is not None
        why = (
            ""
            if target.expect.matches(exc)
            else f"expected {target.expect.describe()}, got {exc!r}"
        )
    return Visit(target.name, not why, time.perf_counter() - start, why)


@dataclass
class Honest:
    """``students`` threads, each visiting every target in turn (offset), ``pause`` s apart."""

    info: dict[str, Any]
    students: int = 3
    pause: float = 0.2
    timeout: float = 5.0
    visits: list[Visit] = field(default_factory=list)

    def run(self, seconds: float, min_rounds: int = 0) -> list[Visit]:
        """Visit for ``seconds``, and at least ``min_rounds`` times as often as there are
        targets (the students start at different targets, so one round covers each)."""
        goal = targets(self.info)
        cafile, fingerprint = self.info["ca_bundle"], self.info["share"]["fingerprint"]
        stop_at = time.monotonic() + seconds
        lock = threading.Lock()
        out: list[Visit] = []

        def student(offset: int) -> None:
            i = 0
            while time.monotonic() < stop_at or len(out) < min_rounds * len(goal):
                result = visit(goal[(offset + i) % len(goal)], cafile, fingerprint, self.timeout)
                with lock:
                    out.append(result)
                i += 1
                time.sleep(self.pause)

        threads = [
            threading.Thread(target=student, args=(n * len(goal) // self.students,))
            for n in range(self.students)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.visits += out
        return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --------------------------------------------------------------------------- one run
@dataclass
class Phase:
    """Honest visits and the teacher's CPU over one stretch of time."""

    visits: list[Visit]
    seconds: float
    cpu_s: float

    @property
    def served(self) -> int:
        return sum(v.served for v in self.visits)

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.seconds

    def p99_ms(self) -> float:
        """p99 of the time to a verdict; a visit that failed counts with its time to fail."""
        return 1000 * percentile([v.seconds for v in self.visits], 0.99)

    def failures(self) -> list[Visit]:
        return [v for v in self.visits if not v.served]


@dataclass
class Room:
    """Everything one hostile-room run measured (see :func:`run`)."""

    nofile: int
    teacher_limit: int
    calm: Phase
    attacked: Phase
    held: list[int]  # hostile connections open at once, sampled during the attacked phase
    peak: int  # most hostile connections open at once, from the first burst on
    connected: int  # how many of them reached the teacher at least once
    opened: int  # hostile connections opened during the attacked phase (reopens included)
    attack: dict[str, Any]  # the attacker's last counters
    before: Usage
    during_max: Usage  # the largest fds and threads seen while attacked
    after: Usage
    recovered_s: float | None  # None: not back to the baseline within the deadline
    stderr: str
    targets: list[str]

    @property
    def tracebacks(self) -> int:
        return self.stderr.count("Traceback")

    @property
    def stderr_lines(self) -> int:
        return len(self.stderr.splitlines())


def _phase(teacher: Teacher, honest: Honest, seconds: float, min_rounds: int) -> Phase:
    cpu0, t0 = teacher.usage().cpu_s, time.monotonic()
    visits = honest.run(seconds, min_rounds)
    return Phase(visits, time.monotonic() - t0, teacher.usage().cpu_s - cpu0)


def run(
    *,
    nofile: int = 256,
    drip: int = 300,
    idle: int = 1100,
    seconds: float = 10.0,
    calm_seconds: float = 3.0,
    students: int = 3,
    pause: float = 0.2,
    timeout: float = 5.0,
    recover_within: float = 20.0,
    directory: str | None = None,
    terminal: bool = True,
) -> Room:
    """Start a teacher at ``ulimit -n nofile``, visit it calmly, then under attack, then
    let go and time how long its fds and threads take to come back to the baseline."""
    with Teacher(nofile, directory, terminal) as teacher:
        info = teacher.start()
        honest = Honest(info, students=students, pause=pause, timeout=timeout)
        calm = _phase(teacher, honest, calm_seconds, 1)
        before = teacher.settle()
        held: list[int] = []
        peak = [before]
        with Attack(info, drip=drip, idle=idle, max_seconds=seconds + 90) as attack:
            attack.wait_connected(drip + idle, timeout=15.0)
            opened_before = int(attack.status.get("opened", 0))
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.25):
                    held.append(attack.held())
                    with contextlib.suppress(OSError):
                        peak.append(teacher.usage())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # At least one round: every target visited under attack, however many the
            # lab has (issue 14 brought it to 27 scenarios plus the join endpoint).
            attacked = _phase(teacher, honest, seconds, 1)
            done.set()
            sampler.join()
            opened = int(attack.status.get("opened", 0)) - opened_before
            counters = attack.stop()
        let_go = time.monotonic()
        recovered: float | None = None
        while time.monotonic() - let_go < recover_within:
            now = teacher.usage()
            if now.fds <= before.fds and now.threads <= before.threads:
                recovered = time.monotonic() - let_go
                break
            time.sleep(0.1)
        after = teacher.usage()
        limit = teacher.limit()
        teacher.stop()
        stderr = teacher.stderr()
    return Room(
        nofile=nofile,
        teacher_limit=limit,
        calm=calm,
        attacked=attacked,
        held=held,
        peak=attack.peak,
        connected=counters.get("ever", 0),
        opened=opened,
        attack=counters,
        before=before,
        during_max=Usage(
            max(u.cpu_s for u in peak), max(u.fds for u in peak), max(u.threads for u in peak)
        ),
        after=after,
        recovered_s=recovered,
        stderr=stderr,
        targets=[t.name for t in targets(info)],
    )


# --------------------------------------------------------------------------- the attackers
class Attack:
    """The hostile part of the room, in its own process (this file run as a script).

    ``drip`` connections send one byte every 1-2 s: half of them to the join endpoint
    (a request head that never ends), half to the scenario ports (a real ClientHello, a
    byte at a time). ``idle`` connections connect and say nothing, spread over every
    port. Each one is reopened 0.2-0.7 s after the teacher drops it (:data:`REOPEN_AFTER`). ``hangups`` half
    requests to the join endpoint come first, each closed at once.
    """

    def __init__(
        self,
        info: dict[str, Any],
        *,
        drip: int = 300,
        idle: int = 1100,
        hangups: int = 20,
        addresses: tuple[str, ...] = ATTACK_ADDRESSES,
        max_seconds: float = 120.0,
    ) -> None:
        plan = {
            "host": "127.0.0.1",
            "join_port": info["share"]["port"],
            "tls": [[s["port"], s["host"]] for s in info["scenarios"].values()],
            "drip": drip,
            "idle": idle,
            "hangups": hangups,
            "addresses": list(addresses),
            "max_seconds": max_seconds,
        }
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and this file
            [sys.executable, str(Path(__file__).resolve()), json.dumps(plan)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.status: dict[str, Any] = {}
        self.peak = 0  # most connections open at once
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.status = json.loads(line)
                self.peak = max(self.peak, int(self.status.get("held", 0)))

    def held(self) -> int:
        return int(self.status.get("held", 0))

    def ever(self) -> int:
        """How many of the connections have reached the teacher at least once."""
        return int(self.status.get("ever", 0))

    def wait_connected(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` of the connections have been open at least once (a lab
        that evicts them at once never has them all open together)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ever() >= count:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return self.ever() >= count

    def stop(self) -> dict[str, Any]:
        """Let go: the attacker closes every socket and exits. Returns its last status."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # the process we started, by its PID
                self.proc.wait()
        self._reader.join(5)
        return self.status

    def __enter__(self) -> Attack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _client_hello(host: str) -> bytes:
    """A real ClientHello, made by the ssl module into memory."""
    tls = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=host
    )
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


class _Slot:
    __slots__ = ("port", "source", "opening", "payload", "sent", "sock", "state", "due", "ever")

    def __init__(self, port: int, source: str, opening: bytes, payload: bytes) -> None:
        self.port, self.source = port, source
        self.opening, self.payload, self.sent = opening, payload, 0
        self.sock: socket.socket | None = None
        self.state = "waiting"  # waiting -> connecting -> held -> waiting ...
        self.due = 0.0  # when to (re)open, or when the next drip byte goes
        self.ever = False  # connected at least once


def _attacker(plan: dict[str, Any]) -> None:  # noqa: C901 - one event loop, read top to bottom
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = plan["drip"] + plan["idle"] + 512
    if hard == resource.RLIM_INFINITY or hard >= want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    host, join_port, addresses = plan["host"], plan["join_port"], plan["addresses"]
    tls = plan["tls"]
    rng = random.Random(13)  # noqa: S311 - jitter, not secrets
    stats = {"held": 0, "ever": 0, "opened": 0, "dropped": 0, "failed": 0, "hangups": 0}

    for n in range(plan["hangups"]):  # L3: half a request, then hang up
        with contextlib.suppress(OSError):
            s = socket.socket()
            s.bind((addresses[n % len(addresses)], 0))
            s.settimeout(2)
            s.connect((host, join_port))
            s.sendall(b"GET /lab.json HTTP/1.1\r\n")
            s.close()
            stats["hangups"] += 1

    slots: list[_Slot] = []
    head = b"GET /lab.json HTTP/1.1\r\nHost: teacher\r\nX-Drip: "
    for n in range(plan["drip"]):
        source = addresses[n % len(addresses)]
        if n % 2 == 0:
            slots.append(_Slot(join_port, source, head, b"a"))
        else:
            port, name = tls[(n // 2) % len(tls)]
            slots.append(_Slot(port, source, b"", _client_hello(name)))
    every_port = [p for p, _ in tls] + [join_port]
    for n in range(plan["idle"]):
        slots.append(
            _Slot(every_port[n % len(every_port)], addresses[n % len(addresses)], b"", b"")
        )

    poller = select.epoll()
    by_fd: dict[int, _Slot] = {}
    stdin = sys.stdin.fileno()
    poller.register(stdin, select.EPOLLIN | select.EPOLLHUP)

    def drop(slot: _Slot, now: float) -> None:
        if slot.sock is not None:
            by_fd.pop(slot.sock.fileno(), None)
            with contextlib.suppress(OSError, ValueError):
                poller.unregister(slot.sock.fileno())
            if slot.state == "held":
                stats["held"] -= 1
                stats["dropped"] += 1
            slot.sock.close()
            slot.sock = None
        slot.state, slot.sent = "waiting", 0
        slot.due = now + rng.uniform(*REOPEN_AFTER)

    def open_(slot: _Slot, now: float) -> None:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            stats["failed"] += 1
            slot.due = now + 1.0
            return
        with contextlib.suppress(OSError):  # the kernel picks the port at connect()
            s.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        try:
            s.setblocking(False)
            s.bind((slot.source, 0))
            err = s.connect_ex((host, slot.port))
        except OSError:
            s.close()
            stats["failed"] += 1
            slot.due = now + 1.0
            return
        if err not in (0, errno.EINPROGRESS):
            s.close()
            stats["failed"] += 1
            slot.due = now + 1.0
            return
        slot.sock, slot.state = s, "connecting"
        by_fd[s.fileno()] = slot
        poller.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)

    def send_next(slot: _Slot, now: float) -> None:
        assert slot.sock is not None
        if slot.payload:
            byte = slot.payload[slot.sent % len(slot.payload) : slot.sent % len(slot.payload) + 1]
            try:
                slot.sock.send(byte)
            except BlockingIOError:
                pass
            except OSError:
                drop(slot, now)
                return
            slot.sent += 1
        slot.due = now + rng.uniform(1.0, 2.0)

    stop_at = time.monotonic() + plan["max_seconds"]
    next_report = 0.0
    running = True
    while running and time.monotonic() < stop_at:
        for fd, events in poller.poll(0.1):
            if fd == stdin:
                if not os.read(stdin, 4096):
                    running = False  # the parent closed our stdin: let go
                continue
            slot = by_fd.get(fd)
            if slot is None or slot.sock is None:
                continue
            now = time.monotonic()
            if slot.state == "connecting":
                if slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    drop(slot, now)
                    continue
                slot.state = "held"
                stats["held"] += 1
                if not slot.ever:
                    slot.ever = True
                    stats["ever"] += 1
                stats["opened"] += 1
                poller.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                if slot.opening:
                    with contextlib.suppress(OSError):
                        slot.sock.send(slot.opening)
                slot.due = now + rng.uniform(0.0, 2.0)
                continue
            try:
                data = slot.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data or events & (select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                drop(slot, now)  # the teacher let this one go: come back soon
        now = time.monotonic()
        for slot in slots:
            if slot.due > now:
                continue
            if slot.state == "waiting":
                open_(slot, now)
            elif slot.state == "held":
                send_next(slot, now)
        if now >= next_report:
            print(json.dumps(stats), flush=True)
            next_report = now + 0.25
    for slot in slots:
        if slot.sock is not None:
            slot.sock.close()
    stats["held"] = 0
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    _attacker(json.loads(sys.argv[1]))
