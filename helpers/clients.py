"""Every HTTPS client a learner meets at work, run for real (introduced in notebook 09).

Theory of operation
-------------------
Behind a TLS-inspecting proxy every tool fails with ``CERTIFICATE_VERIFY_FAILED`` and
every tool is fixed by trusting the company's inspection root, but **each tool reads its
trust store from a different place**: ``requests`` from ``REQUESTS_CA_BUNDLE`` (else
certifi), :mod:`urllib` and :mod:`ssl` from OpenSSL's default paths (``SSL_CERT_FILE``,
``SSL_CERT_DIR``), curl from ``--cacert``/``CURL_CA_BUNDLE``, pip from ``--cert``/
``PIP_CERT``, uv (rustls) from ``SSL_CERT_FILE``... Memorised tables go stale with every
release, so this module *measures* instead:

* one small function per client holds what is that client's own: the Python code
  (:func:`_requests`, :func:`_urllib`, :func:`_httpx`, :func:`_aiohttp`,
  :func:`_truststore`) or the command line (:func:`_curl`, :func:`_pip`, :func:`_uv`),
  with the proxy and the CA bundle given the tool's own way (``verify=``, ``--cacert``,
  ``--cert``...), and which of its output says what happened;
* :func:`fetch` runs one of them (``fetch("pip", index, proxy=..., env=...)``) in a
  **fresh subprocess** whose environment is built from nothing but what you pass (this
  machine's own ``PIP_CERT`` or ``SSL_CERT_FILE`` must not decide the answer), because
  most tools read these variables once, at start-up or import, and returns a
  :class:`Verdict`;
* :func:`which_tool_reads_what` runs every client through the lab's inspecting proxy
  (:mod:`helpers.lab.proxy`) once with nothing set, once per variable naming a bundle
  with the inspection root, and once with the tool's own option, and tabulates what
  happened: the table notebook 09's runbook ends with.

**truststore on Linux.** :func:`truststore.inject_into_ssl` makes :mod:`ssl` verify with
the operating system's trust store: Keychain on macOS, CryptoAPI on Windows, and on Linux
*OpenSSL's default paths*, the files your distribution's ``ca-certificates`` package
fills (where an admin installs a company root with ``update-ca-certificates``). The lab
cannot edit this machine's store, so here ``SSL_CERT_FILE`` stands in for "the OS store":
on Linux that is exactly what truststore reads; on macOS and Windows it would not be.

The Python clients never look a lab name up themselves: through a proxy the proxy does
(``CONNECT valid.lab.localhost:PORT``), and without one the subprocess answers lab names
from the same table as the lab (:mod:`helpers.names`). Each Python subprocess also runs
the course's offline guard (:mod:`helpers.netguard`), so nothing leaves the machine.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from . import names
from .errors import UsageError

if TYPE_CHECKING:
    from .lab import Lab

#: The clients, in the order of notebook 09's runbook.
PYTHON_CLIENTS = ("requests", "urllib", "httpx", "aiohttp", "truststore")
TOOLS = ("curl", "pip", "uv")
CLIENTS = PYTHON_CLIENTS + TOOLS

#: The variables that name a trust store, one column each in :func:`which_tool_reads_what`.
TRUST_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
)

#: The variables that name a proxy (upper and lower case: curl reads only ``https_proxy``).
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
#: The hosts that go direct, never through the proxy.
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")

#: Every variable a subprocess may be given (anything else is a mistake in the call).
ENV_VARIABLES = (
    TRUST_VARIABLES
    + PROXY_VARIABLES
    + NO_PROXY_VARIABLES
    + (
        "SSLKEYLOGFILE",
        "UV_NATIVE_TLS",
        "UV_SYSTEM_CERTS",
    )
)

#: How each tool is given a CA bundle of its own (the last column of the table).
OWN_OPTION = {
    "requests": "verify=bundle",
    "urllib": "context=create_default_context(cafile=bundle)",
    "httpx": "verify=create_default_context(cafile=bundle)",
    "aiohttp": "ssl=create_default_context(cafile=bundle)",
    "truststore": "ctx.load_verify_locations(bundle)",
    "curl": "--cacert bundle",
    "pip": "--cert bundle",
    "uv": "",  # no such option: SSL_CERT_FILE is uv's way
}

#: Seconds each fetch may take (pip and uv start slowly on a loaded machine).
TIMEOUT = 30.0
_ROOT = Path(__file__).resolve().parent.parent
_PROJECT = "tls-course-hello"  # the one project the lab's index serves (helpers/lab/wheel.py)


@dataclass
class Verdict:
    """What one client did with one URL: ``ok`` (an HTTP answer came back) or the ``kind``
    of failure, in :data:`helpers.diagnose.ADVICE`'s words, and the tool's own message."""

    client: str
    url: str
    ok: bool
    kind: str
    status: int | None = None
    message: str = ""
    settings: str = ""  # what this run was given, e.g. "SSL_CERT_FILE=bundle.pem"
    exceptions: tuple[str, ...] = ()
    elapsed: float = 0.0

    @property
    def cell(self) -> str:
        """``✔ 200`` or ``✘ untrusted-root``: one table cell."""
        return f"✔ {self.status or 'ok'}" if self.ok else f"✘ {self.kind}"

    def __str__(self) -> str:
        head = f"{self.client:<10} {self.cell:<22} {self.url}"
        extra = f"  [{self.settings}]" if self.settings else ""
        tail = "" if self.ok else f"\n           {self.message[:300]}"
        return head + extra + tail

    def _repr_html_(self) -> str:
        e = html.escape
        colour = "#1a7f37" if self.ok else "#cf222e"
        return (
            f"<div style='color:#1f2328;background:#f6f8fa;padding:4px 8px'>"
            f"<b style='color:{colour}'>{e(self.cell)}</b> <code>{e(self.client)}</code> "
            f"{e(self.url)} <small>{e(self.settings)}</small>"
            + ("" if self.ok else f"<br><code>{e(self.message[:300])}</code>")
            + "</div>"
        )


# --------------------------------------------------------------------------- the subprocess


def clean_env(
    home: str | os.PathLike[str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """An environment with nothing of this machine's TLS, proxy or pip settings in it.

    ``home`` is a throw-away directory (HOME, caches, configs, data); ``extra`` holds the
    variables under test. pip reads no config file and uv none either.
    """
    home = Path(home)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(_ROOT),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(home / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    for key, value in (extra or {}).items():
        if key not in ENV_VARIABLES:
            raise UsageError(
                f"{key!r} is not a variable these clients are tested with.",
                f"Use one of: {', '.join(ENV_VARIABLES)}.",
            )
        env[key] = str(value)
    return env


class _NotInstalled(Exception):
    """A client's program is not on this machine: its verdict says so."""


def _tool(name: str) -> str | None:
    """Where ``name`` is: next to this Python first (a venv's pip, uv), then on ``PATH``."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def _run(
    program: str, args: Sequence[str], home: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``program args`` in a fresh process that sees nothing but :func:`clean_env`."""
    path = _tool(program)
    if path is None:
        raise _NotInstalled(f"{program} is not installed")
    return subprocess.run(
        [path, *args], env=clean_env(home, env), capture_output=True, text=True, timeout=timeout
    )


def _lab_names_for(url: str) -> dict[str, str]:
    """The lab name of ``url`` and its address, for a subprocess that connects directly."""
    host = urlsplit(url).hostname or ""
    if names.is_lab_name(host):
        names.refuse_unserved(host)  # LabError: no running lab serves it
        address = names.lookup(host)
        return {host: address} if address else {}
    return {}


@dataclass(frozen=True)
class Job:
    """One fetch, as every client is given it; each client function turns it into its own
    way of saying it (``verify=``, ``--cacert``, ``--proxy``, ``HTTPS_PROXY``...)."""

    url: str
    proxy: str | None = None
    cafile: str | None = None  # a CA bundle, given the client's own way (OWN_OPTION)
    timeout: float = TIMEOUT
    trust_env: bool = False  # aiohttp: read HTTPS_PROXY (ClientSession(trust_env=True))
    project: str = _PROJECT  # pip and uv: what to fetch from the index
    native_tls: bool = False  # uv: --native-tls


def shown(name: str, value: str) -> str:
    """A variable's value as it may be printed: a proxy URL's password becomes ``****``."""
    if "proxy" in name.lower() and "@" in value:
        parts = urlsplit(value if "://" in value else "http://" + value)
        if parts.password is not None:
            return value.replace(f":{parts.password}@", ":****@", 1)
    return value


def _settings(
    cafile: str | None, env: Mapping[str, str] | None, proxy: str | None, own: str
) -> str:
    """What a run was given, for a table cell's tooltip (file names only, no passwords)."""
    parts = [
        f"{k}={Path(v).name if k in TRUST_VARIABLES else shown(k, v)}"
        for k, v in (env or {}).items()
    ]
    if cafile:
        parts.append(own.replace("bundle", Path(cafile).name))
    if proxy:
        parts.append(f"proxy {shown('proxy', proxy)}")
    return ", ".join(parts)


def _checked(cafile: str | os.PathLike[str] | None) -> str | None:
    if cafile is None:
        return None
    path = Path(cafile)
    if not path.is_file():
        raise UsageError(
            f"CA bundle {str(path)!r} is not a file.", "Pass the path of a PEM bundle."
        )
    return str(path)


# --------------------------------------------------------------------------- the Python clients
# One function each, run inside the fresh interpreter (``python -m helpers.clients``):
# the client's own code, returning the HTTP status; any exception is the verdict.


def _requests(job: Job) -> int:
    """``requests.get(url, proxies=..., verify=cafile or True)``: trust from ``verify=``,
    else ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi (never the OS store)."""
    import requests

    proxies = {"https": job.proxy} if job.proxy else None
    verify = job.cafile or True
    return requests.get(job.url, proxies=proxies, verify=verify, timeout=job.timeout).status_code


def _urllib(job: Job, context: ssl.SSLContext | None = None) -> int:
    """:mod:`urllib.request` (``http.client`` underneath): trust from a context of your own,
    else OpenSSL's default paths (``SSL_CERT_FILE``, ``SSL_CERT_DIR``)."""
    import urllib.request

    if context is None and job.cafile:
        context = ssl.create_default_context(cafile=job.cafile)
    handlers: list[Any] = [urllib.request.HTTPSHandler(context=context)]
    if job.proxy:
        handlers.append(urllib.request.ProxyHandler({"https": job.proxy}))
    with urllib.request.build_opener(*handlers).open(job.url, timeout=job.timeout) as response:
        return response.status


def _truststore(job: Job) -> int:
    """``truststore.inject_into_ssl()``, then :mod:`urllib`: the OS store (on Linux
    OpenSSL's default paths, so ``SSL_CERT_FILE`` stands in for it here)."""
    import truststore

    truststore.inject_into_ssl()  # ssl.SSLContext is now truststore's: the OS store
    context = ssl.create_default_context()
    if job.cafile:
        context.load_verify_locations(job.cafile)
    return _urllib(job, context)


def _httpx(job: Job) -> int:
    """``httpx.get(url, proxy=..., verify=ssl_context)``: 0.28 wants a context, not a path."""
    import httpx

    verify: Any = ssl.create_default_context(cafile=job.cafile) if job.cafile else True
    return httpx.get(job.url, proxy=job.proxy, verify=verify, timeout=job.timeout).status_code


def _aiohttp(job: Job) -> int:
    """``session.get(url, ssl=ssl_context, proxy=...)`` with asyncio. aiohttp reads
    ``HTTPS_PROXY`` only with ``ClientSession(trust_env=True)``."""
    import asyncio

    import aiohttp

    async def get() -> int:
        ctx: Any = ssl.create_default_context(cafile=job.cafile) if job.cafile else True
        limit = aiohttp.ClientTimeout(total=job.timeout)
        async with aiohttp.ClientSession(timeout=limit, trust_env=job.trust_env) as session:
            async with session.get(job.url, ssl=ctx, proxy=job.proxy) as response:
                await response.read()
                return response.status

    return asyncio.run(get())


PYTHON_CODE: dict[str, Callable[[Job], int]] = {
    "requests": _requests,
    "urllib": _urllib,
    "httpx": _httpx,
    "aiohttp": _aiohttp,
    "truststore": _truststore,
}


def _run_one(client: str, job: Job) -> dict[str, Any]:
    """Inside the subprocess: fetch once with ``client``, return the verdict's fields."""
    from .diagnose import explain

    started = time.monotonic()
    try:
        said: dict[str, Any] = {"ok": True, "kind": "ok", "status": PYTHON_CODE[client](job)}
    except Exception as exc:  # noqa: BLE001 - every failure is the verdict
        d = explain(exc, target=job.url)
        said = {"ok": False, "kind": d.kind, "message": d.message, "exceptions": d.exceptions}
    return {"client": client, "url": job.url, **said, "elapsed": time.monotonic() - started}


def _main(argv: Sequence[str]) -> int:
    """``python -m helpers.clients ORDER``: the subprocess side (one JSON line per client)."""
    from . import netguard

    order = json.loads(argv[0])
    netguard.install()  # nothing leaves the machine, even from a child
    for host, address in order["names"].items():
        names.add(host, address)
    job = Job(**order["job"])
    # truststore.inject_into_ssl() changes ssl for the rest of the process: it goes last.
    for client in sorted(order["clients"], key=lambda c: c == "truststore"):
        print(json.dumps(_run_one(client, job)), flush=True)
    return 0


def _child(clients: Sequence[str], job: Job, env: Mapping[str, str]) -> list[Verdict]:
    """Run the Python ``clients`` one after another in one fresh interpreter."""
    order = {
        "clients": list(clients),
        "names": _lab_names_for(job.url),  # for a direct connection (no proxy, or NO_PROXY)
        "job": asdict(job),
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tls-client-") as home:
        args = ["-m", "helpers.clients", json.dumps(order)]
        done = _run(sys.executable, args, Path(home), env, job.timeout * len(clients) + 30)
    verdicts = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            data["exceptions"] = tuple(data.get("exceptions", ()))
            verdicts.append(Verdict(**data))
    if len(verdicts) != len(clients):
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        got = {v.client for v in verdicts}
        verdicts += [
            Verdict(c, job.url, False, "error", message=message) for c in clients if c not in got
        ]
    spent = (time.monotonic() - started) / max(len(clients), 1)
    for v in verdicts:
        v.elapsed = v.elapsed or spent
        v.settings = _settings(job.cafile, env, job.proxy, OWN_OPTION[v.client])
    return verdicts


# --------------------------------------------------------------------------- the command-line tools
# One function each: the tool's command line, run with :func:`_run`, and which of its
# output says what happened.


class ToolRun(NamedTuple):
    """What a tool's process gave back: exit code, what it said, the HTTP status if known."""

    code: int
    output: str
    status: int | None = None


def _curl(job: Job, home: Path, env: Mapping[str, str]) -> ToolRun:
    """``curl --proxy P --cacert F URL``: trust from ``--cacert``, else ``CURL_CA_BUNDLE``,
    ``SSL_CERT_DIR``/``SSL_CERT_FILE``, else the bundle it was built with."""
    args = ["-sS", "-o", os.devnull, "-w", "%{http_code}", "--max-time", str(job.timeout)]
    if job.proxy:
        args += ["--proxy", job.proxy]
    # Direct (no proxy, or NO_PROXY): curl answers *.localhost itself; say where anyway.
    for host, address in _lab_names_for(job.url).items():
        args += ["--resolve", f"{host}:{urlsplit(job.url).port or 443}:{address}"]
    if job.cafile:
        args += ["--cacert", job.cafile]
    done = _run("curl", [*args, job.url], home, env, job.timeout + 30)
    status = int(done.stdout) if done.stdout.strip().isdigit() else None  # -w %{http_code}
    return ToolRun(done.returncode, done.stderr, status)


#: pip, run with the offline guard on in its own process (and the lab's names, if direct).
_PIP_BOOT = (
    "import json, runpy, sys; from helpers import names, netguard; netguard.install(); "
    "[names.add(h, a) for h, a in json.loads(sys.argv.pop(1)).items()]; "
    "sys.argv[0] = 'pip'; runpy.run_module('pip', run_name='__main__', alter_sys=True)"
)


def _pip(job: Job, home: Path, env: Mapping[str, str]) -> ToolRun:
    """``pip download --index-url INDEX --proxy P --cert F PROJECT`` into a throw-away
    directory: trust from ``--cert``/``PIP_CERT``; what else pip reads depends on its
    version (truststore by default from pip 24.2). The URL is a PEP 503 simple index
    (the lab's: ``lab.url("valid") + "simple/"``)."""
    lab_names = json.dumps(_lab_names_for(job.url))  # for a direct connection
    args = ["-c", _PIP_BOOT, lab_names, "download", "-d", str(home / "d"), "--no-deps"]
    args += ["--no-cache-dir", "--retries", "0", "--timeout", str(int(job.timeout))]
    args += ["--index-url", job.url, job.project]
    if job.proxy:
        args += ["--proxy", job.proxy]
    if job.cafile:
        args += ["--cert", job.cafile]
    done = _run(sys.executable, args, home, env, job.timeout + 60)
    downloaded = any((home / "d").glob("*.whl"))
    return ToolRun(
        done.returncode if downloaded else (done.returncode or 1), done.stdout + done.stderr
    )


def _uv(job: Job, home: Path, env: Mapping[str, str]) -> ToolRun:
    """``uv pip install --target DIR --index-url INDEX PROJECT`` with the proxy in
    ``HTTPS_PROXY`` (uv has no proxy flag, nor a CA-bundle one: ``SSL_CERT_FILE`` is its
    way). uv's TLS is rustls, with webpki roots unless ``--native-tls``."""
    if not job.proxy and _lab_names_for(job.url):
        raise UsageError(
            "uv looks names up with the C library, which would send a lab name to DNS.",
            "Give uv the lab's proxy (proxy=lab.proxy.tunnel or lab.proxy.inspecting).",
        )
    args = ["pip", "install", "--python", sys.executable, "--target", str(home / "t")]
    args += ["--no-deps", "--index-url", job.url, job.project]
    if job.native_tls:
        args.append("--native-tls")
    if job.proxy:
        env = {**env, "HTTPS_PROXY": job.proxy}
    done = _run("uv", args, home, env, job.timeout + 60)
    return ToolRun(done.returncode, done.stdout + done.stderr)


TOOL_RUNS: dict[str, Callable[[Job, Path, Mapping[str, str]], ToolRun]] = {
    "curl": _curl,
    "pip": _pip,
    "uv": _uv,
}


def _tool_verdict(client: str, url: str, ran: ToolRun, started: float, settings: str) -> Verdict:
    """A tool's verdict from its exit code and output (curl, OpenSSL and rustls words)."""
    from .diagnose.classify import _message_verify_kind, _phrase_kind, _verify_kind

    code, output = ran.code, ran.output
    elapsed = time.monotonic() - started
    if code == 0:
        return Verdict(client, url, True, "ok", ran.status, settings=settings, elapsed=elapsed)
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    kind = _message_verify_kind(output) or None
    # curl says "SSL certificate problem: REASON" up to 8.16 and, from 8.17 on (it checks
    # the certificate after the handshake), "SSL certificate OpenSSL verify result: REASON
    # (CODE)" (measured: curl 8.22.0 / OpenSSL 3.6.5).
    match = re.search(
        r"SSL certificate (?:problem|OpenSSL verify result): ([^\n]+?)(?: \((\d+)\))?$",
        output,
        re.MULTILINE,
    )
    if kind is None and match:
        verify_code = int(match.group(2)) if match.group(2) else None
        kind = _verify_kind(match.group(1).strip(), verify_code)
    if kind is None and "invalid peer certificate" in output:  # rustls (uv)
        kind = "unknown-issuer" if "UnknownIssuer" in output else "certificate-invalid"
    if kind is None and re.search(r"CONNECT tunnel failed|Tunnel connection failed|407", output):
        kind = "proxy"
    if kind is None and re.search(r"(?i)failed to connect|couldn't connect", output):  # curl (7)
        kind = "refused"
    kind = kind or _phrase_kind(output) or "error"
    # The most specific line: the certificate's, then TLS's, then any error.
    ranked = [
        [ln for ln in lines if re.search(pattern, ln)]
        for pattern in (
            r"invalid peer certificate|certificate verify failed|SSL certificate (problem|OpenSSL)",
            r"(?i)certificate",
            r"(?i)ssl|tls|proxy|tunnel",
            r"(?i)error|failed",
        )
    ]
    message = next((found[0] for found in ranked if found), lines[-1] if lines else "")
    message = message or f"exit status {code}"
    return Verdict(
        client, url, False, kind, message=message[:500], settings=settings, elapsed=elapsed
    )


# --------------------------------------------------------------------------- one fetch


def fetch(
    client: str,
    url: str,
    *,
    proxy: str | None = None,
    cafile: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
    trust_env: bool = False,
    project: str = _PROJECT,
    native_tls: bool = False,
) -> Verdict:
    """Fetch ``url`` once with ``client`` (one of :data:`CLIENTS`), in a fresh subprocess.

    ``proxy`` and ``cafile`` are given the client's own way (:data:`OWN_OPTION`; uv gets
    the proxy as ``HTTPS_PROXY``), ``env`` holds the variables under test (nothing else of
    this machine's environment is passed on). Client-specific: ``trust_env`` (aiohttp),
    ``project`` (pip and uv fetch it from the index at ``url``), ``native_tls`` (uv).
    A client that is not installed gets an ``error`` verdict that says so.
    """
    if client not in CLIENTS:
        raise UsageError(f"No such client: {client}.", f"Choose from {', '.join(CLIENTS)}.")
    if cafile is not None and not OWN_OPTION[client]:
        raise UsageError(
            f"{client} has no option for a CA bundle of its own.",
            "Pass env={'SSL_CERT_FILE': bundle} instead: that is what uv reads.",
        )
    env = dict(env or {})
    job = Job(url, proxy, _checked(cafile), timeout, trust_env, project, native_tls)
    if client in PYTHON_CODE:
        return _child([client], job, env)[0]
    settings = _settings(job.cafile, env, proxy, OWN_OPTION[client])
    settings += " --native-tls" if native_tls else ""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tls-client-") as home:
        try:
            ran = TOOL_RUNS[client](job, Path(home), env)
        except _NotInstalled as missing:
            return Verdict(client, url, False, "error", message=str(missing), settings=settings)
    return _tool_verdict(client, url, ran, started, settings)


def installed() -> list[str]:
    """The clients this machine can run: a Python client needs its package, a tool its binary."""
    from importlib.util import find_spec

    have = {c for c in (*PYTHON_CLIENTS, "pip") if c == "urllib" or find_spec(c) is not None}
    have |= {t for t in ("curl", "uv") if _tool(t)}
    return [c for c in CLIENTS if c in have]


# --------------------------------------------------------------------------- the table


NOTHING = "nothing set"
OWN = "its own option"


@dataclass
class ClientTable:
    """Which tool reads what: one row per client, one column per way of trusting a bundle.

    Every cell is a :class:`Verdict` from a real run through the proxy in ``proxy``.
    """

    proxy: str
    columns: tuple[str, ...]
    rows: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def reads(self, client: str) -> list[str]:
        """The columns in which ``client`` got through (without :data:`NOTHING`)."""
        return [c for c, v in self.rows.get(client, {}).items() if v.ok and c != NOTHING]

    def cell(self, client: str, column: str) -> str:
        verdict = self.rows.get(client, {}).get(column)
        if verdict is None:
            return "n/a"
        return "✔" if verdict.ok else "✘ " + verdict.kind

    def __str__(self) -> str:
        width = max(len(c) for c in self.columns) + 2
        lines = ["client".ljust(12) + "".join(c.ljust(width) for c in self.columns)]
        for client in self.rows:
            lines.append(
                client.ljust(12) + "".join(self.cell(client, c).ljust(width) for c in self.columns)
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as Markdown (for a closing note or a README)."""
        out = [
            "| client | " + " | ".join(self.columns) + " |",
            "|---" * (len(self.columns) + 1) + "|",
        ]
        for client in self.rows:
            out.append(
                f"| {client} | " + " | ".join(self.cell(client, c) for c in self.columns) + " |"
            )
        return "\n".join(out)

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th>{e(c)}</th>" for c in self.columns)
        body = []
        for client, cells in self.rows.items():
            tds = []
            for column in self.columns:
                v = cells.get(column)
                if v is None:
                    tds.append("<td style='color:#57606a;white-space:nowrap'>n/a</td>")
                    continue
                colour = "#1a7f37" if v.ok else "#cf222e"
                title = e(v.message or v.settings, quote=True)
                tds.append(
                    f"<td style='color:{colour};white-space:nowrap' title=\"{title}\">{e(self.cell(client, column))}</td>"
                )
            body.append(f"<tr><td><code>{e(client)}</code></td>{''.join(tds)}</tr>")
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        return (
            "<table style='color:#1f2328;background:#ffffff'><tr><th>client</th>"
            f"{head}</tr>{''.join(body)}</table><ul>{notes}</ul>"
            "<p><small>Generated by helpers/clients.py from real runs through "
            f"{e(self.proxy)} in {self.elapsed:.1f} s.</small></p>"
        )


def _versions(wanted: Sequence[str]) -> str:
    """Which versions made this table: the answer for pip changed in 24.1 and 24.2."""
    import platform
    import ssl
    from importlib import metadata

    out = [f"Python {platform.python_version()}", ssl.OPENSSL_VERSION]
    for client in wanted:
        if client in ("requests", "httpx", "aiohttp", "truststore", "pip"):
            try:
                out.append(f"{client} {metadata.version(client)}")
            except metadata.PackageNotFoundError:
                continue
        elif client in ("curl", "uv") and (tool := _tool(client)):
            try:
                done = subprocess.run(
                    [tool, "--version"], capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            words = done.stdout.split()
            if len(words) > 1:
                out.append(f"{client} {words[1]}")
    return ", ".join(out)


def _hashed_dir(directory: Path, pem: Path) -> bool:
    """An ``SSL_CERT_DIR`` layout: the certificate under ``<subject hash>.0`` (``openssl rehash``)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return False
    done = subprocess.run(
        [openssl, "x509", "-noout", "-subject_hash", "-in", str(pem)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        return False
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(pem, directory / f"{done.stdout.strip()}.0")
    return True


def which_tool_reads_what(
    lab: Lab,
    *,
    clients: Iterable[str] | None = None,
    variables: Sequence[str] = TRUST_VARIABLES,
    workers: int = 4,
    timeout: float = TIMEOUT,
) -> ClientTable:
    """Run every client through ``lab.proxy.inspecting`` under each trust variable.

    The bundle is what notebook 09's runbook builds: certifi's roots plus the exported
    inspection root. Columns: :data:`NOTHING` (nothing set: every client must fail), one
    per variable in ``variables`` naming the bundle (``SSL_CERT_DIR`` names a hashed
    directory holding the inspection root), and :data:`OWN` (the tool's own option,
    :data:`OWN_OPTION`). The proxy is given to each tool by its own option (uv:
    ``HTTPS_PROXY``, it has none). The Python clients of one column share one subprocess.
    """
    import certifi

    wanted = list(clients) if clients is not None else installed()
    unknown = [c for c in wanted if c not in CLIENTS]
    if unknown:
        raise UsageError(
            f"No such client: {', '.join(unknown)}.", f"Choose from {', '.join(CLIENTS)}."
        )
    proxy = lab.proxy.inspecting
    url = lab.url("valid")
    index = url + "simple/"
    started = time.monotonic()
    columns = (NOTHING, *variables, OWN)
    table = ClientTable(proxy, columns)
    with tempfile.TemporaryDirectory(prefix="tls-bundle-") as scratch:
        bundle = Path(scratch) / "bundle.pem"
        bundle.write_text(Path(certifi.where()).read_text() + lab.proxy.inspection_ca.read_text())
        hashed = Path(scratch) / "certs"
        has_dir = _hashed_dir(hashed, lab.proxy.inspection_ca)
        jobs: list[tuple[str, Any]] = []
        python = [c for c in wanted if c in PYTHON_CLIENTS]
        for column in columns:
            env: dict[str, str] = {}
            cafile = None
            if column == OWN:
                cafile = str(bundle)
            elif column == "SSL_CERT_DIR":
                if not has_dir:
                    continue
                env = {column: str(hashed)}
            elif column != NOTHING:
                env = {column: str(bundle)}
            own_py = [c for c in python if column != OWN or OWN_OPTION[c]]
            if own_py:
                jobs.append((column, ("python", own_py, env, cafile)))
            for tool in (t for t in wanted if t in TOOLS):
                if column == OWN and not OWN_OPTION[tool]:
                    continue
                jobs.append((column, (tool, env, cafile)))

        def run(job: tuple[str, Any]) -> tuple[str, list[Verdict]]:
            column, spec = job
            if spec[0] == "python":
                _, cs, env, cafile = spec
                return column, _child(cs, Job(url, proxy, cafile, timeout), env)
            tool, env, cafile = spec
            where = url if tool == "curl" else index
            return column, [
                fetch(tool, where, proxy=proxy, cafile=cafile, env=env, timeout=timeout)
            ]

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(run, jobs))
    for client in wanted:
        table.rows[client] = {}
    for column, verdicts in results:
        for v in verdicts:
            table.rows[v.client][column] = v
    table.notes.append("Measured with " + _versions(wanted) + ".")
    if "SSL_CERT_DIR" in variables and not has_dir:
        table.notes.append("SSL_CERT_DIR was not tried: no openssl command to hash the directory.")
    if "truststore" in wanted:
        table.notes.append(
            "truststore on Linux verifies with OpenSSL's default paths, so SSL_CERT_FILE stands "
            "in for the OS store here; on macOS and Windows it asks the OS and ignores it."
        )
    if "aiohttp" in wanted:
        table.notes.append(
            "aiohttp ignores HTTPS_PROXY unless ClientSession(trust_env=True); here every tool "
            "got the proxy through its own option (uv: HTTPS_PROXY, it has no flag)."
        )
    if "pip" in wanted:
        table.notes.append(
            "pip got the proxy as --proxy: from pip 24.1 that turns requests' trust_env off "
            "(REQUESTS_CA_BUNDLE ignored), and from 24.2 pip verifies with truststore "
            "(SSL_CERT_FILE read on Linux): compare the pip version above."
        )
    table.elapsed = time.monotonic() - started
    return table


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
