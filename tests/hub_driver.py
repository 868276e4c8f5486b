"""Drive the classroom's JupyterHub like a room of students: shared by tests/test_hub.py and bench/hub.py.

* :class:`Hub` starts the hub exactly as ``make hub`` does (``classroom/hubctl.py``, in its
  background mode, with the classroom venv's Python) on a free loopback port, with a service
  token for this driver, and stops it by its supervisor's PID (``hubctl.py stop``).
* The hub's REST API (https://jupyterhub.readthedocs.io/en/stable/reference/rest-api.html) creates
  students, gives each a token of their own and starts their servers.
* :class:`Kernel` talks to a student's kernel the way JupyterLab does: a session for a notebook
  path (so the kernel's working directory is the notebook's folder), then the Jupyter messaging
  protocol over the kernel's websocket (``/api/kernels/ID/channels``): an ``execute_request`` on
  the shell channel, done when the ``execute_reply`` and the ``idle`` status for it have both
  arrived (https://jupyter-client.readthedocs.io/en/stable/messaging.html).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import websocket  # websocket-client

ROOT = Path(__file__).resolve().parent.parent
CLASSROOM_PYTHON = ROOT / "build" / "classroom" / "venv" / "bin" / "python"
HUBCTL = ROOT / "classroom" / "hubctl.py"
PROXY = ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"
LESSON_00 = "notebooks/00_start_here.ipynb"


def missing() -> str | None:
    """Why the hub cannot start from this checkout yet (None: it can)."""
    if not CLASSROOM_PYTHON.exists():
        return f"{CLASSROOM_PYTHON} is missing: run `make classroom-venv` (or make hub)"
    if not PROXY.exists():
        return f"{PROXY} is missing: run `npm ci --prefix classroom` (or make hub)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Hub:
    """A background hub (classroom/hubctl.py start) with a service token for this driver."""

    state: Path
    lab: str | None = None  # a join URL: reuse that lab instead of starting one
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    info: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        env = {**os.environ, "CLASSROOM_API_TOKEN": self.token}  # never on a command line
        env.pop("TLS_COURSE_LAB", None)
        return subprocess.run(
            [str(CLASSROOM_PYTHON), str(HUBCTL), *args, "--state", str(self.state)],
            env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        )  # fmt: skip

    def start(self) -> Hub:
        why = missing()
        if why:
            raise RuntimeError(why)
        args = ["start", "--port", str(self.port)] + (["--lab", self.lab] if self.lab else [])
        done = self._run(*args, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"hubctl start failed:\n{done.stderr}")
        self.info = json.loads(done.stdout.strip().splitlines()[-1])
        return self

    def stop(self) -> None:
        done = self._run("stop", timeout=150)
        if done.returncode != 0:
            raise RuntimeError(f"hubctl stop failed:\n{done.stderr}")

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pids(self) -> list[int]:
        """The supervisor and everything under it (hub, proxy, lab, servers, kernels)."""
        return tree(self.info.get("pid"))

    # --- the REST API, as the service
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def create_user(self, name: str) -> None:
        r = requests.post(f"{self.api}/users/{name}", headers=self._headers(), timeout=60)
        if r.status_code not in (201, 409):  # 409: exists already
            raise RuntimeError(f"create {name}: {r.status_code} {r.text[:200]}")

    def user_token(self, name: str) -> str:
        r = requests.post(
            f"{self.api}/users/{name}/tokens",
            headers=self._headers(), json={"note": "classroom driver", "expires_in": 3600},
            timeout=60,
        )  # fmt: skip
        if r.status_code != 201:
            raise RuntimeError(f"token for {name}: {r.status_code} {r.text[:200]}")
        return r.json()["token"]

    def start_server(self, name: str, timeout: float = 150) -> float:
        """Start a student's server; seconds until the hub calls it ready."""
        t0 = time.perf_counter()
        r = requests.post(
            f"{self.api}/users/{name}/server", headers=self._headers(), timeout=timeout
        )
        if r.status_code not in (201, 202):
            raise RuntimeError(f"start {name}: {r.status_code} {r.text[:200]}")
        while True:
            user = requests.get(
                f"{self.api}/users/{name}", headers=self._headers(), timeout=60
            ).json()
            server = user["servers"].get("")
            if server and server["ready"]:
                return time.perf_counter() - t0
            if not server and not user.get("pending"):
                raise RuntimeError(f"the server of {name} did not start: {user}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"the server of {name} was not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def stop_server(self, name: str) -> None:
        requests.delete(f"{self.api}/users/{name}/server", headers=self._headers(), timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            user = requests.get(
                f"{self.api}/users/{name}", headers=self._headers(), timeout=60
            ).json()
            if not user["servers"] and not user.get("pending"):
                return
            time.sleep(0.2)

    def server_pid(self, name: str) -> int | None:
        user = requests.get(f"{self.api}/users/{name}", headers=self._headers(), timeout=60).json()
        server = user["servers"].get("") or {}
        return (server.get("state") or {}).get("pid")

    # --- a student in a browser: the login form
    def login(self, name: str, password: str, timeout: float = 150) -> requests.Response:
        """Log in through /hub/login like a browser; follow the spawn until JupyterLab answers."""
        session = requests.Session()
        page = session.get(f"{self.url}/hub/login", timeout=60)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        form = {"username": name, "password": password, **({"_xsrf": xsrf[1]} if xsrf else {})}
        response = session.post(f"{self.url}/hub/login", data=form, timeout=timeout)
        deadline = time.monotonic() + timeout
        # The spawn-pending page refreshes itself in a browser; poll the user's URL instead.
        while response.status_code == 200 and "/lab" not in response.url:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
            response = session.get(f"{self.url}/user/{name}/", timeout=60)
        response.session = session  # type: ignore[attr-defined]
        return response


def execute_request(code: str, session: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    message = {
        "header": {"msg_id": msg_id, "username": "student", "session": session,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }  # fmt: skip
    return msg_id, json.dumps(message)


@dataclass
class CellResult:
    seconds: float
    status: str | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not self.problems


class Kernel:
    """A kernel of a student's server, for one notebook path, over its websocket."""

    def __init__(self, hub: Hub, name: str, token: str, path: str, timeout: float = 150):
        headers = {"Authorization": f"token {token}"}
        base = f"{hub.url}/user/{name}"
        r = requests.post(
            f"{base}/api/sessions", headers=headers, timeout=timeout,
            json={"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}},
        )  # fmt: skip
        if r.status_code != 201:
            raise RuntimeError(f"session for {name}: {r.status_code} {r.text[:200]}")
        self.kernel_id = r.json()["kernel"]["id"]
        self.session = uuid.uuid4().hex
        ws_url = base.replace("http://", "ws://", 1)
        self.ws = websocket.create_connection(
            f"{ws_url}/api/kernels/{self.kernel_id}/channels?session_id={self.session}",
            header=[f"Authorization: token {token}"], timeout=timeout,
        )  # fmt: skip

    def execute(self, code: str) -> CellResult:
        """Run one cell; an error, a failed reply or anything on stderr counts as a problem."""
        msg_id, text = execute_request(code, self.session)
        t0 = time.perf_counter()
        self.ws.send(text)
        status, idle, problems = None, False, []
        while not (status and idle):
            message = json.loads(self.ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "error":
                problems.append(f"{content['ename']}: {content['evalue'][:200]}")
            elif kind == "stream" and content["name"] == "stderr":
                problems.append(f"stderr: {content['text'][:200]}")
        return CellResult(time.perf_counter() - t0, status, problems)

    def close(self) -> None:
        self.ws.close()


def memory_pss(pids: list[int]) -> int:
    """Proportional set size in bytes (shared pages split between their users) of these PIDs."""
    import psutil

    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def tree(pid: int | None) -> list[int]:
    import psutil

    if not pid:
        return []
    try:
        top = psutil.Process(pid)
        return [pid] + [p.pid for p in top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(pids: list[int]) -> list[int]:
    """Which of these PIDs still run (zombies count as gone)."""
    import psutil

    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    return left


__all__ = ["Hub", "Kernel", "CellResult", "missing", "memory_pss", "tree", "alive"]
