"""Renewing certificates: when to renew, what a monitor alerts on, and proof that a swap drops nothing (notebook 10).

Theory of operation
-------------------
Three questions, one module.

**Does the renewal cost a connection?** :func:`keep_fetching` is a client loop that
opens *new* TLS connections as fast as ``workers`` threads can, each a full handshake
verified against ``ca_bundle`` (no session resumption: every handshake sees the
certificate the server holds at that moment), and records each one: when it was
opened, how long it took, which certificate served it (the serial from the
handshake), or why it failed. Run it against :class:`helpers.acme.hotswap.HotSwapServer`
while the certificate is swapped and the :class:`LoadReport` shows both serials,
the moment of the switch, and (the point) zero failures. :class:`LoadLoop` runs the
same loop in the background, with :meth:`LoadLoop.mark` to put the swap on its clock.

**When should a client renew?** :func:`decide` answers with a
:class:`RenewalDecision` (when, why, and on what it is based):

* the CA gave an **ARI window** (RFC 9773 §4.2): pick a uniformly random moment in
  it, so a million clients whose certificates were issued in the same second do not
  all come back in the same second; a moment already past means "renew now";
* the window has **ended** without a renewal, or there is no ARI and the certificate
  is past **two thirds** of its lifetime (what certbot and most ACME clients do:
  30 days before the end of a 90-day certificate): it is **overdue**, renew now;
* no ARI: renew at two thirds (:func:`helpers.acme.ari.two_thirds`).

RFC 9773 §4.3 also says how often to ask again (the ``Retry-After`` of the
renewalInfo response): a CA can move the window earlier, as Let's Encrypt does when it
must revoke certificates early; ARI is how it tells every client at once.

**What should a monitor alert on?** Not on a short lifetime: a 6-day certificate
issued yesterday is healthy. The monitor of notebook 03 (``alert_level`` in
``helpers/exercises/nb03.py``: ``"warn"`` once less than a third of the lifetime is
left, ``"critical"`` under a tenth, ``"expired"``) already measures time *relative to
the lifetime*; :func:`missed_renewals` turns that into the alert an ACME deployment
needs: a certificate that is past its renewal point (two thirds, or the end of its ARI
window) **and is still the newest one for its names**. A renewed certificate's
predecessor is not an alert, however old: it was replaced.
"""

from __future__ import annotations

import datetime as _dt
import random
import socket
import ssl
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from cryptography import x509

from ..errors import UsageError
from .ari import RenewalWindow, two_thirds
from .hotswap import SERIAL_HEADER

__all__ = [
    "LoadLoop",
    "LoadReport",
    "MissedRenewal",
    "RenewalDecision",
    "Sample",
    "decide",
    "keep_fetching",
    "missed_renewals",
]

# =========================================================================== under load


@dataclass(frozen=True)
class Sample:
    """One connection of the loop."""

    at: float  #: seconds since the loop started, when the connection was opened
    took: float  #: seconds: TCP connect + handshake + request + whole response
    serial: int | None  #: the serving certificate's serial (from the handshake), if any
    error: str = ""  #: why it failed; "" for a success

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(repr=False)
class LoadReport:
    """What :func:`keep_fetching` saw: every connection, and the marks put on its clock."""

    url: str
    workers: int
    duration: float  #: seconds the loop ran
    samples: list[Sample]
    marks: list[tuple[float, str]] = field(default_factory=list)  #: (seconds, label)

    @property
    def succeeded(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    @property
    def failures(self) -> Counter[str]:
        """Why connections failed, and how often."""
        return Counter(s.error for s in self.failed)

    def _latency(self, q: int) -> float | None:
        times = sorted(s.took for s in self.succeeded)
        if not times:
            return None
        if len(times) == 1:
            return times[0]
        return statistics.quantiles(times, n=100, method="inclusive")[q - 1]

    @property
    def p50(self) -> float | None:
        """Median latency of a successful connection, seconds."""
        return self._latency(50)

    @property
    def p99(self) -> float | None:
        """99th percentile latency of a successful connection, seconds."""
        return self._latency(99)

    @property
    def rate(self) -> float:
        """Successful connections per second."""
        return len(self.succeeded) / self.duration if self.duration > 0 else 0.0

    @property
    def serials(self) -> list[int]:
        """Serving certificates in the order they were first seen (by opening time)."""
        ordered = sorted(self.succeeded, key=lambda s: s.at)
        return list(dict.fromkeys(s.serial for s in ordered if s.serial is not None))

    def first_seen(self, serial: int) -> float | None:
        """When a connection served by ``serial`` was first opened (seconds), or None."""
        times = [s.at for s in self.succeeded if s.serial == serial]
        return min(times) if times else None

    def mark_time(self, label: str) -> float:
        """When :meth:`LoadLoop.mark` put ``label`` on the clock (the last such mark)."""
        for at, name in reversed(self.marks):
            if name == label:
                return at
        raise UsageError(
            f"No mark called {label!r} in this report.",
            "Marks: " + (", ".join(repr(n) for _, n in self.marks) or "none") + ".",
        )

    def opened_after(self, label: str) -> list[Sample]:
        """The connections opened after the mark ``label`` (e.g. every one after the swap)."""
        moment = self.mark_time(label)
        return [s for s in self.samples if s.at > moment]

    def summary(self) -> str:
        """One line: how many, how fast, how many failed, latency, certificates seen."""
        n = len(self.samples)
        text = f"{n} connections in {self.duration:.1f} s ({self.rate:.0f}/s), {len(self.failed)} failed"
        if self.failures:
            top, count = self.failures.most_common(1)[0]
            text += f" (most: {count}× {top})"
        if self.p50 is not None and self.p99 is not None:
            text += f"; latency p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms"
        seen = self.serials
        if seen:
            parts = [f"{_short(seen[0])}"] + [
                f"{_short(s)} from {self.first_seen(s):.2f} s" for s in seen[1:]
            ]
            text += "; certificates: " + " then ".join(parts)
        return text

    def __str__(self) -> str:
        return self.summary()

    def rows(self) -> list[dict[str, Any]]:
        """One row per certificate seen, then one per kind of failure (for a table)."""
        out: list[dict[str, Any]] = []
        for serial in self.serials:
            hits = [s for s in self.succeeded if s.serial == serial]
            out.append(
                {
                    "served by": f"serial {_short(serial)}",
                    "connections": len(hits),
                    "first opened": f"{min(s.at for s in hits):.2f} s",
                    "last opened": f"{max(s.at for s in hits):.2f} s",
                }
            )
        for reason, count in self.failures.most_common():
            out.append({"served by": f"FAILED: {reason}", "connections": count})
        for at, label in self.marks:
            out.append({"served by": f"mark: {label}", "first opened": f"{at:.2f} s"})
        return out

    def __repr__(self) -> str:
        # One line, not every sample: a report printed outside an HTML view stays readable.
        return f"<LoadReport {self.summary()}>"

    def _repr_html_(self) -> str:
        from ..cards import Table

        return Table(
            self.rows(),
            columns=["served by", "connections", "first opened", "last opened"],
            title=self.summary(),
        )._repr_html_()


def _short(serial: int) -> str:
    """A serial as the first 8 hex digits: enough to tell two certificates apart."""
    text = f"{serial:x}"
    return text[:8] + "…" if len(text) > 8 else text


def _reason(exc: BaseException) -> str:
    """A failure as a short phrase, the same for the same cause (so they can be counted)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _fetch_once(
    context: ssl.SSLContext, host: str, port: int, sni: str, request: bytes, timeout: float
) -> tuple[int, str]:
    """One new connection: handshake (verified), GET, whole answer. (serial, error or "")."""
    raw = socket.create_connection((host, port), timeout=timeout)
    # No Nagle: our Finished and the GET are two small writes; Nagle would hold the second
    # until the server's delayed ACK (40 ms on Linux), and every latency would measure that.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context.wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
        serial = x509.load_der_x509_certificate(der).serial_number if der else -1
        tls.sendall(request)
        data = bytearray()
        while len(data) < 1 << 20:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    head = bytes(data).split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        return serial, f"HTTP answer {lines[0][:40]!r}" if lines[0] else "empty answer"
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    claimed = headers.get(SERIAL_HEADER.lower())
    if claimed is not None and int(claimed, 16) != serial:
        return serial, "the answer names another certificate than the handshake showed"
    return serial, ""


class LoadLoop:
    """:func:`keep_fetching` in the background: ``start()``, :meth:`mark`, ``wait()``.

    ``with LoadLoop(url, ca, seconds=3) as loop: ...; loop.mark("swap")`` runs for
    ``seconds`` (or until :meth:`stop`); :attr:`report` holds the :class:`LoadReport`
    after the block (``wait()`` returns it).
    """

    def __init__(
        self,
        url: str,
        ca_bundle: str | Path,
        *,
        seconds: float,
        workers: int = 4,
        server_hostname: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise UsageError(
                f"keep_fetching() needs an https:// URL, not {url!r}.",
                "Pass the server's url, e.g. server.url.",
            )
        if seconds <= 0 or workers < 1:
            raise UsageError(
                f"seconds={seconds} and workers={workers} give no connections.",
                "Use a positive number of seconds and at least one worker.",
            )
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or 443
        self._sni = server_hostname or parts.hostname
        path = parts.path or "/"
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n"
            "User-Agent: helpers.acme.renewal\r\n\r\n"
        ).encode("ascii")
        # One verifying context for all workers; each wrap_socket is a fresh full handshake
        # (Python resumes a session only when you pass session=, and we never do).
        self._context = ssl.create_default_context(cafile=str(ca_bundle))
        self.seconds = seconds
        self.workers = workers
        self.timeout = timeout
        self.report: LoadReport | None = None
        self._samples: list[Sample] = []
        self._marks: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0
        self._end = 0.0

    def start(self) -> Self:
        self._t0 = time.monotonic()
        self._end = self._t0 + self.seconds
        self._threads = [
            threading.Thread(target=self._work, name=f"load-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def now(self) -> float:
        """Seconds since the loop started (the clock of every :class:`Sample`)."""
        return time.monotonic() - self._t0

    @property
    def progress(self) -> int:
        """Connections finished so far (a cell can wait for the loop to warm up)."""
        with self._lock:
            return len(self._samples)

    def mark(self, label: str) -> float:
        """Put ``label`` on the loop's clock now (e.g. right after a swap); returns the time."""
        at = self.now()
        with self._lock:
            self._marks.append((at, label))
        return at

    def stop(self) -> None:
        """End early (the report covers what ran)."""
        self._stop.set()

    def wait(self) -> LoadReport:
        """Wait for the loop to end; the :class:`LoadReport`."""
        for thread in self._threads:
            thread.join()
        if self.report is None:
            with self._lock:
                self.report = LoadReport(
                    self.url,
                    self.workers,
                    self.now(),  # the loop's real length, last answer included
                    sorted(self._samples, key=lambda s: s.at),
                    list(self._marks),
                )
        return self.report

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stop()
        self.wait()

    def _work(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._end:
            opened = time.monotonic()
            serial: int | None = None
            try:
                serial, error = _fetch_once(
                    self._context, self._host, self._port, self._sni, self._request, self.timeout
                )
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                error = _reason(exc)
            sample = Sample(opened - self._t0, time.monotonic() - opened, serial, error)
            with self._lock:
                self._samples.append(sample)


def keep_fetching(
    url: str,
    ca_bundle: str | Path,
    *,
    seconds: float,
    workers: int = 4,
    server_hostname: str | None = None,
) -> LoadReport:
    """Open new verified TLS connections to ``url`` for ``seconds`` from ``workers``
    threads; what each saw, as a :class:`LoadReport`.

    Each connection is a fresh handshake verified against ``ca_bundle`` (and the URL's
    host name, or ``server_hostname``), a GET, and the whole answer: so the report shows
    which certificate the server held at each moment. Failures are recorded with their
    reason, never raised. To act while it runs (swap a certificate), use
    :class:`LoadLoop`.
    """
    return (
        LoadLoop(url, ca_bundle, seconds=seconds, workers=workers, server_hostname=server_hostname)
        .start()
        .wait()
    )


# =========================================================================== when to renew

Source = Literal["ARI", "two thirds", "overdue"]


@dataclass(frozen=True)
class RenewalDecision:
    """When to renew a certificate, why, and on what the decision rests."""

    when: _dt.datetime
    why: str
    source: Source

    def __str__(self) -> str:
        return f"renew at {self.when:%Y-%m-%d %H:%M} UTC ({self.source}): {self.why}"


def _utc(moment: _dt.datetime) -> _dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def _span(delta: _dt.timedelta) -> str:
    hours = abs(delta) / _dt.timedelta(hours=1)
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def decide(
    cert: x509.Certificate,
    window: RenewalWindow | None,
    now: _dt.datetime,
    rng: random.Random | None = None,
) -> RenewalDecision:
    """When to renew ``cert``, given the CA's ARI ``window`` (None: it gave none) at ``now``.

    RFC 9773 §4.2: "the client SHOULD select a uniform random time within the suggested
    window"; if that time is in the past, renew now. Past the end of the window, or,
    without ARI, past two thirds of the lifetime, the renewal was missed: ``"overdue"``,
    renew now. Otherwise without ARI: at two thirds (``"two thirds"``). ``rng`` makes the
    random pick repeatable (a test, a lesson).
    """
    now = _utc(now)
    expires = cert.not_valid_after_utc
    gone = " It has expired already: clients are failing now." if now > expires else ""
    if window is not None:
        if now >= window.end:
            return RenewalDecision(
                now,
                f"the ARI window ended {_span(now - window.end)} ago without a renewal "
                f"(it ran {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC): "
                f"renew now.{gone}",
                "overdue",
            )
        picked = window.pick(rng)
        if picked <= now:
            return RenewalDecision(
                now,
                "the random moment picked in the ARI window has passed (RFC 9773 §4.2): renew now",
                "ARI",
            )
        return RenewalDecision(
            picked,
            f"a random moment in the CA's window {window.start:%Y-%m-%d %H:%M} to "
            f"{window.end:%Y-%m-%d %H:%M} UTC (RFC 9773 §4.2), so clients do not all come back at once",
            "ARI",
        )
    due = two_thirds(cert)
    if now > due:
        return RenewalDecision(
            now,
            f"two thirds of its lifetime passed {_span(now - due)} ago and no ARI window says "
            f"otherwise: renew now.{gone}",
            "overdue",
        )
    return RenewalDecision(
        due,
        "no ARI window from the CA: at two thirds of the lifetime "
        f"({_span(expires - cert.not_valid_before_utc)}), as certbot and most ACME clients do",
        "two thirds",
    )


# =========================================================================== monitoring

#: The monitor's levels, as in notebook 03's ``alert_level``: less than a third of the
#: lifetime left is "warn" (the renewal should have happened), less than a tenth "critical".
WARN_LEFT, CRITICAL_LEFT = 1 / 3, 1 / 10


@dataclass(frozen=True)
class MissedRenewal:
    """An alert: ``cert`` is the newest certificate for ``label`` and is past its renewal point."""

    label: str
    cert: x509.Certificate
    due: _dt.datetime  #: the renewal point it passed (two thirds, or the ARI window's end)
    late: _dt.timedelta  #: how long ago
    level: str  #: "warn", "critical" or "expired" (notebook 03's levels)

    def __str__(self) -> str:
        left = self.cert.not_valid_after_utc - (self.due + self.late)
        end = f"expired {_span(-left)} ago" if left < _dt.timedelta(0) else f"{_span(left)} left"
        return (
            f"{self.level}: {self.label} was due for renewal {_span(self.late)} ago "
            f"({self.due:%Y-%m-%d %H:%M} UTC) and was not replaced; {end}"
        )


def _label_and_cert(item: Any) -> tuple[str, x509.Certificate | None]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        label, value = item
    else:
        label, value = None, item
    cert = value if isinstance(value, x509.Certificate) else getattr(value, "cert", None)
    if cert is not None and not isinstance(cert, x509.Certificate):
        cert = getattr(cert, "cert", None)  # a helpers.pki Leaf inside something else
    if label is None:
        label = getattr(value, "label", None) or getattr(value, "host", None)
    if label is None and cert is not None:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            label = ", ".join(sorted(str(g.value) for g in san))
        except x509.ExtensionNotFound:
            label = cert.subject.rfc4514_string()
    return str(label or "?"), cert


def missed_renewals(
    certs_or_rows: Iterable[Any] | Mapping[str, Any],
    now: _dt.datetime,
    *,
    window_for: Callable[[x509.Certificate], RenewalWindow | None] | None = None,
) -> list[MissedRenewal]:
    """The alerts a monitor should raise at ``now``: renewals that were missed.

    ``certs_or_rows``: certificates (grouped by their names), ``(label, certificate)``
    pairs, a ``{label: certificate}`` mapping, or rows with ``.cert`` and ``.label`` /
    ``.host`` (:func:`helpers.fetch.fetch_certificates` results); several certificates
    under one label are that host's history, and only the newest (latest ``notBefore``;
    on a tie, the one listed last) counts: the others were replaced. ``window_for(cert)`` may give the ARI window
    (e.g. ``client.renewal_info``); its end is then the renewal point, otherwise two
    thirds of the lifetime. Rows without a certificate are not renewal alerts (a monitor
    reports them as errors). Most overdue first.
    """
    now = _utc(now)
    items = certs_or_rows.items() if isinstance(certs_or_rows, Mapping) else certs_or_rows
    newest: dict[str, x509.Certificate] = {}
    for item in items:
        label, cert = _label_and_cert(item)
        if cert is None:
            continue
        held = newest.get(label)
        # Later notBefore wins; on a tie (X.509 times are whole seconds: a renewal in the
        # same second) the one listed later, as a history is listed oldest first.
        if held is None or cert.not_valid_before_utc >= held.not_valid_before_utc:
            newest[label] = cert
    alerts = []
    for label, cert in newest.items():
        window = window_for(cert) if window_for is not None else None
        due = window.end if window is not None else two_thirds(cert)
        if now <= due or now < cert.not_valid_before_utc:
            continue
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        left = (cert.not_valid_after_utc - now) / life
        level = "expired" if left < 0 else "critical" if left < CRITICAL_LEFT else "warn"
        alerts.append(MissedRenewal(label, cert, due, now - due, level))
    return sorted(alerts, key=lambda a: a.late, reverse=True)
