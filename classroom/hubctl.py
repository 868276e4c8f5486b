"""Start and stop the classroom's JupyterHub (``make hub``, ``make hub-stop``; docs/teaching.md).

Run with the classroom venv's Python (``build/classroom/venv/bin/python``)::

    hubctl.py run   [--port 8000] [--state DIR] [--lab JOIN_URL]   # foreground: Ctrl-C stops all
    hubctl.py start [same options]    # background: returns once the hub answers; prints one JSON line
    hubctl.py stop  [--state DIR]     # stops what `start` started

``run`` is a small supervisor. It builds one matplotlib font cache (``MPLCONFIGDIR``) for every
student, starts the teacher's shared lab (``python -m helpers.lab --share`` on loopback; or
reuses the lab given by ``--lab`` / ``TLS_COURSE_LAB``), then JupyterHub with
classroom/jupyterhub_config.py. JupyterHub starts configurable-http-proxy and the students'
servers itself. On Ctrl-C or SIGTERM the supervisor stops the hub first (which stops every
student's server and the proxy: ``cleanup_servers``), then the lab.

Every process is stopped by the PID of the process itself, as ``subprocess.Popen`` returns it or
as the program wrote it to its pid file, never by the PID of a shell that started it: a
``( cd dir && jupyterhub & echo $! )`` records the subshell, and killing that orphans the hub
(whose proxy a second hub then fails to stop). The children run in sessions of their own, so a
Ctrl-C reaches the supervisor only and the shutdown happens in order.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "classroom" / "jupyterhub_config.py"
PROXY = ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"
DEFAULT_STATE = ROOT / "build" / "classroom" / "hub"
MPLCONFIG = ROOT / "build" / "classroom" / "mplconfig"
LOOPBACK = "127.0.0.1"
ATTEMPTS = 3  # hub starts tried when an internal port is taken meanwhile
INFO = "hubctl.json"  # in the state directory: the supervisor's PID, the hub's URL, the lab


class HubError(Exception):
    """Something the teacher can fix, said in one sentence."""


def free_port() -> int:
    """A port the OS considers free now (the hub's internal API and the proxy's API)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def check_port_free(port: int) -> None:
    """The hub's public port: taken means another hub (or program) answers there."""
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise HubError(
                f"port {port} on {LOOPBACK} is in use: choose another (make hub HUB_PORT=8010), "
                "or stop what runs there (make hub-stop, for a background hub)"
            ) from None


def warm_matplotlib(bin_dir: Path) -> Path:
    """Build matplotlib's font list once, in a directory every student's kernel shares."""
    MPLCONFIG.mkdir(parents=True, exist_ok=True)
    if not any(MPLCONFIG.glob("fontlist-*.json")):
        env = {**os.environ, "MPLCONFIGDIR": str(MPLCONFIG)}
        subprocess.run(
            [str(bin_dir / "python"), "-c", "import matplotlib.font_manager"], env=env, check=True
        )
    return MPLCONFIG


def start_lab(bin_dir: Path) -> tuple[subprocess.Popen, str]:
    """The teacher's shared lab on loopback: the students' servers run on this machine."""
    lab = subprocess.Popen(
        [str(bin_dir / "python"), "-m", "helpers.lab", "--share", "--share-port", "0",
         "--bind", LOOPBACK, "--advertise", LOOPBACK, "--json"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    line = lab.stdout.readline() if lab.stdout else ""
    try:
        join = json.loads(line)["share"]["join"][0]
    except (ValueError, KeyError, IndexError):
        stop_process(lab, "lab")
        raise HubError(f"the shared lab did not start (it printed {line[:200]!r})") from None
    return lab, join


def stop_process(proc: subprocess.Popen, what: str, timeout: float = 45.0) -> None:
    """SIGTERM, wait, SIGKILL only if it will not stop."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"hubctl: the {what} (pid {proc.pid}) did not stop in {timeout:.0f} s: killing it",
              file=sys.stderr)  # fmt: skip
        proc.kill()
        proc.wait()


def start_hub(bin_dir: Path, env: dict[str, str], state: Path) -> subprocess.Popen:
    """JupyterHub with classroom/jupyterhub_config.py, its internal ports picked free now."""
    env = {
        **env,
        "CLASSROOM_HUB_API_PORT": str(free_port()),
        "CLASSROOM_PROXY_API_PORT": str(free_port()),
    }
    return subprocess.Popen(
        [str(bin_dir / "jupyterhub"), "-f", str(CONFIG)],
        cwd=state, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def stop_proxy(state: Path) -> None:
    """Stop configurable-http-proxy by the PID the hub wrote (a hub that failed leaves it)."""
    pid_file = state / "jupyterhub-proxy.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    if _alive(pid) and "configurable-http-proxy" in _cmdline(pid):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 15):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def hub_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/hub/api/", timeout=5) as response:  # noqa: S310 - our loopback URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def run(args: argparse.Namespace) -> int:
    """Foreground: lab, then hub; returns when the hub exits or on Ctrl-C / SIGTERM."""
    if not PROXY.exists():
        raise HubError(f"{PROXY} is missing: run `make hub` (it runs npm ci --prefix classroom)")
    check_port_free(args.port)
    state = Path(args.state).resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    bin_dir = Path(sys.executable).parent
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    env = {
        **os.environ,
        "HUB_PORT": str(args.port),
        "CLASSROOM_STATE": str(state),
        "CLASSROOM_AUTH": args.auth,
        "MPLCONFIGDIR": str(warm_matplotlib(bin_dir)),
        # nbgrader's gradebook runs `alembic` by name: the venv's bin comes first.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    lab = None
    join = args.lab or os.environ.get("TLS_COURSE_LAB")
    if not join:
        lab, join = start_lab(bin_dir)
    env["TLS_COURSE_LAB"] = join
    url = f"http://{LOOPBACK}:{args.port}"
    print(f"hubctl: JupyterHub on {url}/ (students log in there; the first login under a name "
          f"sets its password; the admin is `teacher`)\nhubctl: shared lab {join}\n"
          "hubctl: Ctrl-C stops the hub, every student's server, the proxy and the lab",
          file=sys.stderr, flush=True)  # fmt: skip
    hub = None
    try:
        for attempt in range(1, ATTEMPTS + 1):
            hub = start_hub(bin_dir, env, state)
            info = {"pid": os.getpid(), "hub_pid": hub.pid, "lab_pid": lab.pid if lab else None,
                    "url": url, "lab": join, "state": str(state)}  # fmt: skip
            (state / INFO).write_text(json.dumps(info))
            while not stopping.is_set() and hub.poll() is None and not hub_answers(url):
                stopping.wait(0.2)
            if hub.poll() is None or stopping.is_set() or attempt == ATTEMPTS:
                break
            # Exited before answering: most often an internal port (picked free a moment ago)
            # was taken by another program meanwhile. Its proxy may still run: stop it, retry.
            stop_proxy(state)
            print(f"hubctl: the hub exited at start (code {hub.returncode}); retrying with other "
                  "internal ports", file=sys.stderr, flush=True)  # fmt: skip
        while not stopping.is_set() and hub.poll() is None:
            stopping.wait(0.5)
    finally:
        if hub is not None:
            stop_process(hub, "hub")
        stop_proxy(state)  # the hub stops it, except when the hub itself failed
        if lab is not None:
            stop_process(lab, "lab")
        with contextlib.suppress(FileNotFoundError):
            (state / INFO).unlink()
    return 0 if stopping.is_set() else (hub.returncode or 1)


def start(args: argparse.Namespace) -> int:
    """Background: `run` in its own session, logging to STATE/hub.log; wait until it answers."""
    state = Path(args.state).resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (state / INFO).exists() and _alive(json.loads((state / INFO).read_text())["pid"]):
        raise HubError(f"a hub already runs with state {state}: `make hub-stop` first")
    check_port_free(args.port)
    log = state / "hub.log"
    argv = [sys.executable, str(Path(__file__).resolve()), "run", "--state", str(state),
            "--port", str(args.port), "--auth", args.auth]  # fmt: skip
    if args.lab:
        argv += ["--lab", args.lab]
    with log.open("ab") as out:
        supervisor = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://{LOOPBACK}:{args.port}"
    deadline = time.monotonic() + args.timeout
    while not hub_answers(url):
        if supervisor.poll() is not None or time.monotonic() > deadline:
            stop_process(supervisor, "hub supervisor")
            tail = log.read_text(errors="replace")[-3000:]
            raise HubError(f"the hub did not come up on {url} (log {log}):\n{tail}")
        time.sleep(0.2)
    while not (state / INFO).exists():  # written before the hub starts: at most a moment
        time.sleep(0.05)
    info = json.loads((state / INFO).read_text())
    print(json.dumps({**info, "log": str(log)}), flush=True)
    return 0


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        # Our own child (start() in this process) stays a zombie until reaped.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop(args: argparse.Namespace) -> int:
    """Stop a background hub: its supervisor, which stops the hub, the servers, proxy and lab."""
    state = Path(args.state).resolve()
    try:
        info = json.loads((state / INFO).read_text())
    except FileNotFoundError:
        print(f"hubctl: no hub running with state {state}", file=sys.stderr)
        return 0
    pid = info["pid"]
    if _alive(pid) and "hubctl.py" in _cmdline(pid):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 60):
            os.kill(pid, signal.SIGKILL)
    # A supervisor killed hard leaves its children: stop them by the PIDs they were given.
    for key, marker in (("hub_pid", "jupyterhub"), ("lab_pid", "helpers.lab")):
        child = info.get(key)
        if _alive(child) and marker in _cmdline(child):
            os.kill(child, signal.SIGTERM)
            if not _wait_gone(child, 45):
                os.kill(child, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (state / INFO).unlink()
    print(f"hubctl: stopped the hub at {info['url']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubctl.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "start", "stop"):
        sub = commands.add_parser(name)
        sub.add_argument("--state", default=str(DEFAULT_STATE), help="database, homes, logs")
        if name == "stop":
            continue
        sub.add_argument("--port", type=int, default=int(os.environ.get("HUB_PORT", "8000")))
        sub.add_argument("--lab", default=None, help="join URL of a lab already serving")
        sub.add_argument("--auth", choices=("firstuse", "dummy"), default="firstuse")
        sub.add_argument("--timeout", type=float, default=120.0, help="start: seconds to wait")
    args = parser.parse_args(argv)
    try:
        return {"run": run, "start": start, "stop": stop}[args.command](args)
    except HubError as exc:
        print(f"hubctl: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
