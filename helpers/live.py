"""The one switch for live-host cells, and live checks that tell the truth (notebook 00; 02, 03).

The series runs offline against the local lab. Cells that talk to real internet
hosts (badssl.com, well-known sites) run only when live mode is on:

* set the environment variable ``TLS_COURSE_LIVE=1`` before starting JupyterLab, or
* call ``helpers.live.enable()`` in a notebook.

Tests never turn it on. Live cells use :data:`TIMEOUT` and compare "expected" with
"got" tolerantly, because live hosts drift: certificates are renewed, sites move.

Theory of operation: why a failed live check is not "drift"
-----------------------------------------------------------
A live check climbs the same ladder as any HTTPS client (see :mod:`helpers.diagnose`):
name → address (DNS), TCP connection (directly, or to a proxy that opens a tunnel with
``CONNECT``, RFC 9110 §9.3.6), TLS handshake, certificate verdict. Only the last rung
says anything about the *host*. If the ladder breaks lower down, the host did not
drift: the notebook simply could not reach it. :func:`survey` therefore gives every
host one :data:`VERDICTS` entry, in plain words:

* ``as expected`` / ``drifted``: the host answered, and its verdict matched (or not)
  what the notebook expected when it was written;
* ``no network / DNS``: the name could not be looked up (no network, or no DNS server
  answers); ``timeout``: nothing answered in time; ``unreachable``: the connection was
  refused or the network is unreachable; ``proxy problem``: the proxy you configured
  refused the tunnel or wants a password;
* ``check failed``: the check itself stopped before reaching the host (a URL it cannot
  use, for example); the row says why in one sentence.

It also bounds the whole section in time (:data:`DEADLINE`): every host is checked at
once in its own thread, and a host that has not finished by the deadline is reported
by the step it was stuck in. The C resolver behind :func:`socket.getaddrinfo` has no
timeout of its own (with no network it can wait 10 s or more per name), so the deadline
is what keeps an offline notebook fast.

**Proxies.** :func:`proxy_for` reads ``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY``
exactly as ``requests`` does when ``trust_env`` is on (it asks ``requests.utils``), and
live checks go through that proxy; with none set they go direct. Through a proxy the
*proxy* looks the name up, so no local DNS lookup is made. The CA-bundle variables
(``REQUESTS_CA_BUNDLE``) are still ignored: live checks trust certifi's bundle, so the
answer does not depend on your shell.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from . import names
from .errors import LiveModeOff, OfflineViolation, UsageError

if TYPE_CHECKING:
    from .diagnose import Diagnosis

ENV_VAR = "TLS_COURSE_LIVE"
TIMEOUT = 5.0  # seconds, for every step of every live connection
#: Seconds a whole live section (:func:`survey`) may take, however many hosts it checks.
DEADLINE = 12.0

_override: bool | None = None


def enabled() -> bool:
    """True when live-host cells should run."""
    if _override is not None:
        return _override
    return os.environ.get(ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def enable() -> None:
    """Turn live mode on for this kernel."""
    global _override
    _override = True


def disable() -> None:
    """Turn live mode off for this kernel (the default)."""
    global _override
    _override = False


def require() -> None:
    """Raise :class:`~helpers.errors.LiveModeOff` unless live mode is on."""
    if not enabled():
        raise LiveModeOff(
            "This cell talks to real internet hosts and live mode is off.",
            f"Set {ENV_VAR}=1 or call helpers.live.enable() to run it.",
        )


def banner() -> str:
    """One line for a notebook to print: is live mode on, and how to change it."""
    if enabled():
        return (
            f"Live mode is ON: cells marked 'live' will contact real hosts (timeout "
            f"{TIMEOUT:g} s per step, {DEADLINE:g} s per section)."
        )
    return (
        "Live mode is OFF: everything runs against the local lab. "
        f"To try real hosts, set {ENV_VAR}=1 or run helpers.live.enable()."
    )


# --------------------------------------------------------------------------- proxies


def proxy_for(url: str) -> str | None:
    """The proxy ``requests`` would use for ``url`` (``trust_env`` on), or ``None``: direct.

    Reads ``HTTPS_PROXY``/``https_proxy``, ``ALL_PROXY`` and ``NO_PROXY`` (and, on
    macOS and Windows, the system proxy settings) through ``requests.utils``, so a host
    listed in ``NO_PROXY`` goes direct, as it would with ``requests.get(url)``.
    """
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url)) or None


class ProxyTunnelError(ConnectionError):
    """The proxy answered ``CONNECT`` with something other than 200 (``status``)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def open_tunnel(proxy: str, host: str, port: int, timeout: float = TIMEOUT) -> socket.socket:
    """A TCP connection to ``host:port`` through an HTTP proxy's ``CONNECT`` tunnel.

    RFC 9110 §9.3.6: the client asks the proxy to ``CONNECT host:port``; after a 2xx
    answer the proxy relays bytes both ways, and the TLS handshake runs end to end
    through it (the proxy sees only encrypted records and the name in SNI). A proxy
    that wants a password answers 407 (RFC 9110 §15.5.8); the user name and password
    come from the proxy URL (``http://user:pass@proxy:3128``), as with ``requests``.
    A lab name (``*.lab.localhost``, however spelled) is refused with
    :class:`~helpers.errors.UsageError`: it is never sent to a proxy.
    """
    p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if p.scheme != "http" or not p.hostname:
        raise UsageError(
            f"{proxy!r} is not an http:// proxy URL, the only kind these live checks speak.",
            "Write it as http://host:port (HTTPS_PROXY=http://proxy.example:3128).",
        )
    if names.is_lab_name(host):
        # The proxy would look the name up in its own DNS (a leak), and a lab on this
        # machine's loopback is out of its reach anyway (RFC 6761 §6.3).
        raise UsageError(
            f"{host!r} is a lab name, served on this machine: a proxy cannot reach it and "
            "would send the name to DNS.",
            "Connect to lab hosts directly, without a proxy.",
        )
    names.refuse_unserved(p.hostname)  # a proxy named by a lab name needs a running lab
    sock = socket.create_connection((p.hostname, p.port or 80), timeout=timeout)
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if p.username is not None:
            secret = f"{unquote(p.username)}:{unquote(p.password or '')}"
            request += (
                f"Proxy-Authorization: Basic {base64.b64encode(secret.encode()).decode()}\r\n"
            )
        sock.sendall((request + "\r\n").encode("ascii", "replace"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk or len(answer) > 16384:
                raise ProxyTunnelError("the proxy closed the connection before answering CONNECT")
            answer += chunk
        line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if status is None or not 200 <= status < 300:
            raise ProxyTunnelError(f"Tunnel connection failed: {line.strip()}", status)
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------- verdicts

AS_EXPECTED = "as expected"
DRIFTED = "drifted"
NO_NETWORK = "no network / DNS"
TIMED_OUT = "timeout"
UNREACHABLE = "unreachable"
PROXY_PROBLEM = "proxy problem"
CHECK_FAILED = "check failed"

#: Every verdict :func:`survey` gives, with what it means in plain words.
VERDICTS: dict[str, str] = {
    AS_EXPECTED: "the host answered, as this notebook expected",
    DRIFTED: "the host answered, but not as this notebook expected: it changed since",
    NO_NETWORK: "the name could not be looked up: no network, or no DNS server answers",
    TIMED_OUT: "nothing answered in time: a firewall dropping packets, or a very slow network",
    UNREACHABLE: "the connection was refused, or the network is unreachable from here",
    PROXY_PROBLEM: "the proxy refused the tunnel, wants a password, or could not be reached",
    CHECK_FAILED: "the check stopped before reaching the host (the row says why)",
}
#: Verdicts that say nothing about the host: it was never reached.
NOT_REACHED = frozenset({NO_NETWORK, TIMED_OUT, UNREACHABLE, PROXY_PROBLEM, CHECK_FAILED})


def _proxy_words(d: Diagnosis) -> str | None:
    """Plain words for a proxy failure anywhere in the exception chain, else None."""
    from .diagnose import exception_chain

    if d.error is None:
        return None
    for exc in exception_chain(d.error):
        kinds = {c.__name__ for c in type(exc).__mro__}
        text = str(exc)
        if (
            isinstance(exc, ProxyTunnelError)
            or "ProxyError" in kinds
            or "Tunnel connection failed" in text
        ):
            if "407" in text:
                return (
                    "the proxy wants a user name and password (407): put them in the proxy "
                    "URL, HTTPS_PROXY=http://user:password@proxy:port"
                )
            if any(w in text for w in ("403", "502", "503")):
                return f"the proxy refused to open a tunnel to this host ({text.strip()[-60:]})"
            return "the proxy could not be reached, or it closed the tunnel: check HTTPS_PROXY"
    return None


def verdict_of(
    d: Diagnosis, expected: Iterable[str], *, proxy: str | None = None
) -> tuple[str, str]:
    """One live check's verdict and a sentence in plain words.

    ``d`` is what :func:`helpers.diagnose.check` returned; ``expected`` the kinds the
    notebook expects (``{"ok"}``, ``{"expired"}``). Failures below TLS (no name, no
    answer, a proxy refusing) are *not* drift: the host was never reached.
    """
    wanted = set(expected)
    if proxy is not None:
        words = _proxy_words(d)
        if words:
            return PROXY_PROBLEM, words
    if d.kind in ("dns", "blocked"):
        if d.kind == "blocked":
            return NO_NETWORK, "the offline guard blocked the lookup (tests run loopback-only)"
        return (
            NO_NETWORK,
            f"could not look up {d.host or 'the name'}: no network, or no DNS server answers",
        )
    if d.kind == "timeout":
        step = "the proxy" if proxy else "the host"
        return TIMED_OUT, f"{step} did not answer within the timeout"
    if d.kind in ("refused", "unreachable"):
        return UNREACHABLE, "the connection was refused, or the network is unreachable"
    if d.kind in wanted:
        return AS_EXPECTED, "answered as expected" + (
            f" (verify code {d.verify_code})" if d.verify_code else ""
        )
    got = "OK" if d.ok else d.kind + (f", verify code {d.verify_code}" if d.verify_code else "")
    return DRIFTED, f"answered {got}; expected {' or '.join(sorted(wanted))}"


# --------------------------------------------------------------------------- survey


@dataclass
class LiveRow:
    """One live host: what was expected, what happened, and the verdict in plain words."""

    url: str
    expected: str
    got: str
    verify_code: int | None
    verdict: str
    words: str
    via_proxy: str | None = None
    seconds: float = 0.0


@dataclass(repr=False)
class LiveReport:
    """What :func:`survey` found, host by host, and one honest summary sentence."""

    rows: list[LiveRow]
    elapsed: float
    timeout: float
    deadline: float
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)

    @property
    def drifted(self) -> list[str]:
        """URLs that answered but not as expected: real drift, nothing else."""
        return [r.url for r in self.rows if r.verdict == DRIFTED]

    @property
    def reached(self) -> list[LiveRow]:
        return [r for r in self.rows if r.verdict not in NOT_REACHED]

    @property
    def summary(self) -> str:
        n = len(self.rows)
        counts = Counter(r.verdict for r in self.rows)
        took = f"({self.elapsed:.1f} s)"
        if n and not self.reached:
            if counts[NO_NETWORK] == n:
                return (
                    f"No network: none of the {n} host names could be looked up {took}. Live "
                    "results are unavailable here; this says nothing about the hosts (nothing "
                    "drifted). Run it again with an internet connection."
                )
            if counts[PROXY_PROBLEM]:
                return (
                    f"The proxy did not let the checks through {took}: "
                    + next(r.words for r in self.rows if r.verdict == PROXY_PROBLEM)
                    + ". Nothing here says a host drifted."
                )
            direct = not any(r.via_proxy for r in self.rows)
            hint = (
                " Names resolved but nothing answered: networks that require a proxy behave "
                "like this. If yours does, set HTTPS_PROXY=http://proxy:port (live checks "
                "honour it, as requests does) and run again."
                if direct and counts[NO_NETWORK] == 0 and counts[CHECK_FAILED] == 0
                else ""
            )
            return (
                f"No host could be reached {took}: "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
                + f". Live results are unavailable; nothing drifted.{hint}"
            )
        parts = [f"{counts[AS_EXPECTED]} of {n} hosts answered as expected {took}."]
        if self.drifted:
            parts.append(
                "Drifted since this notebook was written: " + ", ".join(self.drifted) + "."
            )
        unreached = [r for r in self.rows if r.verdict in NOT_REACHED]
        if unreached:
            parts.append(
                "Not reached (not drift): "
                + ", ".join(f"{r.url} ({r.verdict})" for r in unreached)
                + "."
            )
        return " ".join(parts + self.notes)

    def table(self) -> Any:
        from .cards import Table

        return Table(
            [
                {
                    "url": r.url,
                    "expected": r.expected,
                    "got": r.got,
                    "verify_code": r.verify_code,
                    "verdict": r.verdict,
                    "in plain words": r.words,
                }
                for r in self.rows
            ],
            title="Live hosts"
            + (
                f" through proxy {self.rows[0].via_proxy}"
                if self.rows and self.rows[0].via_proxy
                else ", direct"
            ),
        )

    def __str__(self) -> str:
        lines = [f"{r.url:<40} {r.verdict:<18} {r.words}" for r in self.rows]
        return "\n".join([*lines, self.summary])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        return self.table()._repr_html_() + f"<p>{html.escape(self.summary)}</p>"


def _tls_interception_note(rows: list[LiveRow]) -> list[str]:
    """Every reached host, even those expected OK, failing with an unknown issuer."""
    reached = [r for r in rows if r.verdict not in NOT_REACHED]
    issuer_kinds = {"unknown-issuer", "untrusted-root", "self-signed"}
    if (
        len(reached) >= 3
        and all(r.got in issuer_kinds for r in reached)
        and any("ok" in r.expected for r in reached)
    ):
        return [
            "Every host failed with an unknown issuer, even ones that should be fine: something "
            "on this network re-signs TLS traffic (a company TLS-inspecting proxy or an antivirus). "
            "Trust its root with verify= or truststore (notebook 02), never verify=False."
        ]
    return []


def _one_sentence(exc: BaseException) -> str:
    """What went wrong inside a host's check, in one sentence for its row.

    A :class:`~helpers.errors.CourseError` already is one (its ``what``); anything else
    is named by its type and the first line of its message.
    """
    from .errors import CourseError

    if isinstance(exc, CourseError):
        return exc.what
    text = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"the check raised {type(exc).__name__}" + (f": {text}" if text else "")


def _host_of(url: str) -> str:
    """The host part of a survey URL (``https://`` assumed), or the text itself."""
    try:
        return urlsplit(url if "://" in url else "https://" + url).hostname or url
    except ValueError:  # e.g. "https://[::1/": the check itself will say what is wrong
        return url


def _survey_proxy(url: str) -> str | None:
    """The proxy a survey row goes through: none for a lab name or a URL nobody can read.

    A lab name is served on this machine: a proxy elsewhere could not reach it and would
    look the name up in its own DNS. A broken URL (``https://[::1/``) goes to the check
    unproxied, and the check says in its row what is wrong with it.
    """
    if names.is_lab_name(_host_of(url)):
        return None
    try:
        return proxy_for(url)
    except ValueError:
        return None


def survey(
    expect: Mapping[str, Iterable[str]],
    *,
    via: str = "requests",
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
    check: Callable[..., Diagnosis] | None = None,
) -> LiveReport:
    """Check every URL of ``expect`` at once and say, per host, what really happened.

    ``expect`` maps each URL to the kinds the notebook expects (``{"ok"}``,
    ``{"expired"}``; see :data:`helpers.diagnose.ADVICE`). Each host runs in its own
    thread: a DNS lookup first (skipped through a proxy), then
    :func:`helpers.diagnose.check` with ``via`` and ``timeout`` per step. The whole
    survey returns within ``deadline`` seconds (plus a fraction): a host still busy
    then is reported by the step it was stuck in, never as drift. An error raised inside
    a host's check (a :class:`~helpers.errors.UsageError` from
    :func:`helpers.diagnose.check` for a URL it cannot use) is that row's one sentence,
    verdict :data:`CHECK_FAILED`: it is neither printed by the thread nor a "timeout".

    Does not look at :func:`enabled`: the notebook decides whether to call it.
    Lab names (``*.lab.localhost``, however spelled) are answered only by a lab running
    in this process: with none, :class:`~helpers.errors.LabError` is raised before any
    name is looked up; with one, they go direct, never through a proxy.
    """
    if check is None:
        from .diagnose import check as real_check

        check = real_check

    urls = list(expect)
    for url in urls:  # before any thread looks anything up
        names.refuse_unserved(_host_of(url))
    started = time.monotonic()
    step: dict[str, str] = dict.fromkeys(urls, "waiting")
    done: dict[str, LiveRow] = {}
    # Lab hosts always go direct (as in helpers.fetch): see _survey_proxy.
    proxies = {url: _survey_proxy(url) for url in urls}

    def one(url: str) -> None:
        # A thread's uncaught exception would be printed on stderr by threading's hook
        # and leave no row: the table would call the host a "timeout". Record it instead.
        t0 = time.monotonic()
        try:
            check_one(url, t0)
        except Exception as exc:  # noqa: BLE001 - becomes the row's one sentence
            done[url] = LiveRow(
                url,
                " or ".join(sorted(expect[url])),
                "error",
                None,
                CHECK_FAILED,
                _one_sentence(exc),
                None,
                time.monotonic() - t0,
            )

    def check_one(url: str, t0: float) -> None:
        wanted = set(expect[url])
        proxy = proxies[url]
        shown = proxy.rsplit("@", 1)[-1] if proxy else None  # no password in a table
        try:
            port: int | None = urlsplit(url if "://" in url else "https://" + url).port or 443
        except ValueError:  # a broken URL: no lookup, the check below says what is wrong
            port = None
        host = _host_of(url)
        if proxy is None and port is not None:  # through a proxy, the proxy looks it up
            step[url] = "dns"
            try:
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, OfflineViolation) as exc:
                blocked = isinstance(exc, OfflineViolation)
                done[url] = LiveRow(
                    url,
                    " or ".join(sorted(wanted)),
                    "blocked" if blocked else "dns",
                    None,
                    NO_NETWORK,
                    "the offline guard blocked the lookup (tests run loopback-only)"
                    if blocked
                    else f"could not look up {host}: no network, or no DNS server answers ({exc})",
                    None,
                    time.monotonic() - t0,
                )
                return
        step[url] = "connect"
        d = check(url, via=via, timeout=timeout, probe=False, proxy=proxy)
        verdict, words = verdict_of(d, wanted, proxy=proxy)
        done[url] = LiveRow(
            url,
            " or ".join(sorted(wanted)),
            d.kind,
            d.verify_code,
            verdict,
            words,
            shown,
            time.monotonic() - t0,
        )

    threads = [threading.Thread(target=one, args=(u,), daemon=True, name=f"live {u}") for u in urls]
    for t in threads:
        t.start()
    end = started + deadline
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    rows = []
    for url in urls:
        row = done.get(url)
        if row is None:  # still busy at the deadline: say where it was stuck
            stuck = step[url]
            wanted = " or ".join(sorted(expect[url]))
            if stuck == "dns":
                row = LiveRow(
                    url,
                    wanted,
                    "-",
                    None,
                    NO_NETWORK,
                    f"the name lookup had not finished after {deadline:g} s: no network, "
                    "or no DNS server answers",
                    None,
                    deadline,
                )
            else:
                row = LiveRow(
                    url,
                    wanted,
                    "-",
                    None,
                    TIMED_OUT,
                    f"no verdict after {deadline:g} s: the host or the path to it is too slow",
                    (proxies[url] or "").rsplit("@", 1)[-1] or None,
                    deadline,
                )
        rows.append(row)
    report = LiveReport(rows, time.monotonic() - started, timeout, deadline)
    report.notes = _tls_interception_note(rows)
    return report


__all__ = [
    "AS_EXPECTED",
    "CHECK_FAILED",
    "DEADLINE",
    "DRIFTED",
    "ENV_VAR",
    "NOT_REACHED",
    "NO_NETWORK",
    "PROXY_PROBLEM",
    "TIMED_OUT",
    "TIMEOUT",
    "UNREACHABLE",
    "VERDICTS",
    "LiveReport",
    "LiveRow",
    "ProxyTunnelError",
    "banner",
    "disable",
    "enable",
    "enabled",
    "open_tunnel",
    "proxy_for",
    "require",
    "survey",
    "verdict_of",
]
