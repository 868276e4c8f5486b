"""An offline badssl.com: one broken TLS server per scenario on 127.0.0.1 (introduced in notebook 02).

Theory of operation
-------------------
badssl.com is a set of web servers, each broken in one instructive way: an expired
certificate, a missing intermediate, TLS 1.0 only... The course needs the same thing
without the internet, so :class:`Lab` builds it on this machine:

1. **Certificates** (:mod:`helpers.lab.build`): a private root CA and an intermediate,
   then one certificate per scenario, each made wrong on purpose by its
   :class:`~helpers.lab.scenarios.CertRecipe` (EC P-256 unless the scenario is about
   RSA). They are cached outside the repository and rebuilt when stale, or when the
   course changes what it builds (a recipe, a date: :func:`~helpers.lab.build.build_fingerprint`).
2. **Servers** (:mod:`helpers.lab.server`): one listening socket per scenario, port chosen
   by the OS, all served by a single thread. Each port has its own
   :class:`ssl.SSLContext`, because protocol versions and client-certificate demands
   are per context. They speak just enough HTTP/1.1 for ``requests``, ``curl`` and a
   browser (:mod:`helpers.lab.pages`). Two scenarios break rules that server keeps, so
   they have small servers of their own (``Scenario.server``), started and stopped with
   the lab: ``legacy-renegotiation`` (:mod:`helpers.lab.tls12_legacy`, TLS 1.2 without
   RFC 5746) and ``truncation`` (:mod:`helpers.lab.truncating`, no close_notify).
3. **Names** (:mod:`helpers.names`): every scenario has a name under ``lab.localhost``;
   while a lab runs, a process-local hosts table answers those names with 127.0.0.1,
   so ``requests.get(lab.url("expired"), verify=lab.ca_bundle)`` works and no lab name
   ever reaches a DNS server.
4. **Proxies** (:mod:`helpers.lab.proxy`, notebook 09): an HTTP CONNECT tunnel and a
   TLS-inspecting "corporate" proxy on loopback, ``lab.proxy.tunnel`` and
   ``lab.proxy.inspecting``; the root the second re-signs with is ``lab.proxy.inspection_ca``.
5. **An ACME CA** (:mod:`helpers.acme.server`, notebook 10): ``lab.acme`` issues
   certificates for names under ``lab.localhost`` through RFC 8555, from the lab's online
   issuing CA ("TLS Course Lab ACME CA", :mod:`helpers.lab.build`). Its directory is
   ``lab.acme.directory``, trusted through ``lab.ca_bundle`` like every lab server; its
   HTTP-01 validation fetches ``http://NAME:lab.acme.http01_port/...`` on loopback.

The lab root is trusted by nobody until you say so: pass ``lab.ca_bundle`` as
``cafile=``/``verify=``, or ``--cacert`` to curl. Every scenario states what a default
Python client decides (:class:`Expect`, :mod:`helpers.lab.expect`), and the tests hold the
lab to it. Where that verdict depends on the Python build and the OpenSSL version (the
TLS 1.0/1.1 servers), :mod:`helpers.lab.legacy` computes it for the running Python and
the installed ``curl`` and ``openssl``.

>>> lab = get_lab()                        # doctest: +SKIP
>>> requests.get(lab.url("valid"), verify=lab.ca_bundle).status_code
200

**In a classroom** (:mod:`helpers.lab.remote`) the teacher runs
``python -m helpers.lab --share`` and students call :func:`join` with the URL it
prints, fingerprint included (``join("http://10.0.0.5:8446/#3F2A9B1C77D0E4A5")``), or
set ``TLS_COURSE_LAB=http://10.0.0.5:8446/#3F2A9B1C77D0E4A5`` before starting
JupyterLab: then :func:`get_lab` returns the teacher's lab (a :class:`RemoteLab`) in
every notebook, unchanged. Without the part after ``#`` both refuse: it is what proves
that the lab is the teacher's.
"""

from __future__ import annotations

import atexit
import html
import ipaddress
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .. import names
from ..errors import LabError, UsageError
from .build import LabFiles, cache_dir, ensure, server_context
from .pages import app_for
from .proxy import LabProxy
from .remote import LAB_ENV, SHARE_PORT, RemoteLab, ShareServer
from .remote.addresses import _url_host
from .scenarios import DOMAIN, SCENARIOS, CertRecipe, Expect, Scenario
from .server import FD_RESERVE, App, Reactor, RefusalHook, connection_cap, raise_nofile_limit
from .tls12_legacy import LegacyRenegotiationServer
from .truncating import TruncatingServer

if TYPE_CHECKING:
    from ..acme.server import AcmeServer

__all__ = [
    "DOMAIN",
    "LAB_ENV",
    "SCENARIOS",
    "SHARE_PORT",
    "CertRecipe",
    "Expect",
    "Lab",
    "RemoteLab",
    "Scenario",
    "ShareServer",
    "cache_dir",
    "get_lab",
    "join",
    "running_lab",
]


def _connect_address(bind: str) -> str:
    """Where a client on this machine reaches a server bound to ``bind``."""
    if bind in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is reached via loopback
        return "127.0.0.1"
    return bind


class Lab:
    """The lab: certificates, one TLS server per scenario, and their names.

    ``Lab()`` only prepares; :meth:`start` (or ``with Lab() as lab:``) builds or loads the
    certificates, binds the ports and resolves the names; :meth:`stop` undoes all three.
    In a notebook use :func:`get_lab`, which starts one lab per kernel and reuses it.

    ``directory`` is where certificates are cached (default: :func:`cache_dir`).
    ``bind`` is the listening address: loopback unless you are serving a classroom.
    ``ports_from``: listen on ``ports_from``, ``ports_from + 1``, ... in scenario order
    instead of ports the OS picks (so a classroom firewall can open one fixed range).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        bind: str = "127.0.0.1",
        *,
        scenarios: Mapping[str, Scenario] | None = None,
        ports_from: int | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.bind = bind
        self._scenarios: Mapping[str, Scenario] = dict(scenarios or SCENARIOS)
        if ports_from is not None and not 0 < ports_from <= 65536 - len(self._scenarios):
            raise LabError(
                f"ports_from={ports_from} leaves no room for {len(self._scenarios)} ports.",
                f"Pick a start between 1024 and {65536 - len(self._scenarios)}.",
            )
        self.ports_from = ports_from
        self._files: LabFiles | None = None
        self._reactor: Reactor | None = None
        self._ports: dict[str, int] = {}
        self._names: list[tuple[str, str]] = []
        self._proxy: LabProxy | None = None  # the CONNECT proxies (helpers/lab/proxy.py)
        self._acme: AcmeServer | None = None  # the ACME CA (helpers/acme/server.py)
        # Scenarios the reactor cannot play (Scenario.server): their own small servers.
        self._side: dict[str, LegacyRenegotiationServer | TruncatingServer] = {}
        self._lock = threading.Lock()

    # --- lifecycle
    def start(self) -> Lab:
        """Build or load certificates, listen on every scenario port, register the names."""
        with self._lock:
            if self._reactor is not None:
                return self
            files = ensure(self.directory, self._scenarios)
            # Every client is a file descriptor: ask for room before a room asks for it
            # (the connection cap is derived from this limit; see helpers/lab/server.py).
            raise_nofile_limit()
            # The side servers' connections are descriptors too: the reactor's cap leaves
            # room for them, or a room full of idle clients would exhaust the fd limit
            # (EMFILE) and nobody, not even the join endpoint, could be accepted.
            side_names = [n for n, s in self._scenarios.items() if s.server != "reactor"]
            side_fds = sum(_SIDE_CAPS[self._scenarios[n].server][0] + 1 for n in side_names)
            cap = connection_cap(
                listeners=len(self._scenarios) - len(side_names), reserve=FD_RESERVE + side_fds
            )
            reactor = Reactor(name=f"tls-lab-{id(self):x}", max_connections=cap)
            ports: dict[str, int] = {}
            side: dict[str, LegacyRenegotiationServer | TruncatingServer] = {}
            port = 0
            try:
                for i, (name, scenario) in enumerate(self._scenarios.items()):
                    port = 0 if self.ports_from is None else self.ports_from + i
                    if scenario.server != "reactor":
                        side[name] = _side_server(scenario, files, self.bind, port).start()
                        ports[name] = side[name].port
                        continue
                    listener = reactor.add_site(
                        server_context(scenario, files),
                        app_for(scenario),
                        host=self.bind,
                        port=port,
                        name=name,
                    )
                    ports[name] = listener.getsockname()[1]
                reactor.start()
            except (OSError, UsageError) as exc:
                reactor.stop()
                for server in side.values():
                    server.stop()
                where = f"{self.bind!r}" + (f" port {port}" if port else "")
                reason = exc.strerror if isinstance(exc, OSError) else None
                raise LabError(
                    f"The lab could not listen on {where}: {reason or exc}.",
                    "Pick another ports_from (--ports-from) range."
                    if port
                    else "Use the default bind='127.0.0.1', or an address of this machine.",
                ) from exc
            address = _connect_address(self.bind)
            registered: list[tuple[str, str]] = []
            for scenario in self._scenarios.values():
                if names.is_lab_name(scenario.host):
                    names.add(scenario.host, address)
                    registered.append((scenario.host, address))
            proxy: LabProxy | None = None
            try:  # the CONNECT proxies, on loopback whatever the bind (helpers/lab/proxy.py)
                proxy = LabProxy(files.ca_bundle, files.directory).start()
                acme = _acme_server(files).start()  # loopback too (see _acme_server)
            except BaseException:
                if proxy is not None:
                    proxy.stop()
                reactor.stop()
                for server in side.values():
                    server.stop()
                for host, address in registered:
                    names.remove(host, address)
                raise
            self._proxy, self._acme = proxy, acme
            self._side = side
            self._files, self._reactor, self._ports, self._names = files, reactor, ports, registered
        return self

    def stop(self) -> None:
        """Close every port and connection, join the server thread, forget the names."""
        with self._lock:
            reactor, self._reactor = self._reactor, None
            if reactor is None:
                return
            proxy, self._proxy = self._proxy, None
            if proxy is not None:
                proxy.stop()
            acme, self._acme = self._acme, None
            if acme is not None:
                acme.stop()
            side, self._side = self._side, {}
            for server in side.values():
                server.stop()
            reactor.stop()
            for host, address in self._names:
                names.remove(host, address)
            self._names = []
            self._ports = {}

    @property
    def running(self) -> bool:
        return self._reactor is not None

    @property
    def accepted(self) -> int:
        """Connections the scenario ports have accepted since :meth:`start` (a counter that
        only grows: how busy a shared lab is; ``bench/hub.py`` reads it per second)."""
        reactor = self._reactor
        if reactor is None:
            self._running_files()  # raises the "not running" LabError
            raise LabError("The lab is not running.", "Start it first.")
        return reactor.accepted

    @property
    def proxy(self) -> LabProxy:
        """The lab's HTTP CONNECT proxies (notebook 09, :mod:`helpers.lab.proxy`):
        ``proxy.tunnel`` and ``proxy.inspecting`` URLs, and ``proxy.inspection_ca``, the
        root the inspecting one re-signs every site with."""
        proxy = self._proxy
        if proxy is None:
            self._running_files()  # raises the "not running" LabError
            raise LabError("The lab's proxy is not running.", "Restart the lab.")
        return proxy

    @property
    def acme(self) -> AcmeServer:
        """The lab's ACME CA (notebook 10, :mod:`helpers.acme.server`): ``acme.directory``
        is the URL an ACME client starts from (trust ``lab.ca_bundle`` for it), and
        ``acme.http01_port`` the port where its HTTP-01 validation expects the client's
        challenge server. It issues from "TLS Course Lab ACME CA" for names under
        ``lab.localhost`` only; ``acme.crl_pem`` lists what it revoked."""
        acme = self._acme
        if acme is None:
            self._running_files()  # raises the "not running" LabError
            raise LabError("The lab's ACME CA is not running.", "Restart the lab.")
        return acme

    def serve_plain(
        self,
        app: App,
        *,
        host: str | None = None,
        port: int = 0,
        name: str = "",
        on_refused: RefusalHook | None = None,
    ) -> socket.socket:
        """Serve ``app`` over plain HTTP from the lab's own server thread; return the listener.

        The join endpoint (:class:`ShareServer`) uses this, so it gets the same deadlines,
        connection cap and fair eviction as the TLS scenarios instead of a thread per
        client (see :mod:`helpers.lab.server`). ``host`` defaults to the lab's ``bind``;
        ``on_refused(address, reason)`` hears about each client refused. Raises
        :class:`OSError` if the port cannot be bound; :meth:`stop_serving` undoes it.
        """
        reactor = self._reactor
        if reactor is None:
            raise LabError("The lab is not running.", "Start it before serving from it.")
        return reactor.add_site(
            None, app, host=self.bind if host is None else host, port=port, name=name,
            on_refused=on_refused,
        )  # fmt: skip

    def stop_serving(self, listener: socket.socket) -> None:
        """Close a listener :meth:`serve_plain` opened, and its connections. Idempotent."""
        reactor = self._reactor
        if reactor is not None:
            reactor.remove_site(listener)
        else:
            listener.close()  # the lab stopped first: its reactor closed it already

    @property
    def connections(self) -> int:
        """How many client connections the servers hold open right now."""
        reactor = self._reactor
        return reactor.connections if reactor is not None else 0

    @property
    def max_connections(self) -> int:
        """How many client connections fit at once (from the open-file limit); beyond
        that the idlest connection of the busiest client address is dropped."""
        reactor = self._reactor
        return reactor.max_connections if reactor is not None else 0

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- where things are
    def _scenario(self, name: str) -> Scenario:
        try:
            return self._scenarios[name]
        except KeyError:
            raise LabError(
                f"There is no lab scenario called {name!r}.",
                "Pick one of: " + ", ".join(self._scenarios) + ".",
            ) from None

    def _running_files(self) -> LabFiles:
        if self._files is None or self._reactor is None:
            raise LabError(
                "The lab is not running.",
                "Call lab.start(), use 'with Lab() as lab:', or get_lab().",
            )
        return self._files

    @property
    def scenarios(self) -> Mapping[str, Scenario]:
        """Every scenario by name."""
        return self._scenarios

    def host(self, name: str) -> str:
        """The host name clients use for scenario ``name`` (``expired.lab.localhost``)."""
        return self._scenario(name).host

    def port(self, name: str) -> int:
        """The TCP port scenario ``name`` listens on."""
        self._scenario(name)
        self._running_files()
        return self._ports[name]

    def address(self, name: str) -> tuple[str, int]:
        """``(ip, port)`` to connect to for scenario ``name``, without any name lookup."""
        return (_connect_address(self.bind), self.port(name))

    def url(self, name: str) -> str:
        """``https://expired.lab.localhost:PORT/`` (an IPv6 host goes in brackets)."""
        return f"https://{_url_host(self.host(name))}:{self.port(name)}/"

    @property
    def ca_bundle(self) -> Path:
        """The lab root CA certificate (PEM): what clients must trust."""
        return self._running_files().ca_bundle

    @property
    def crl(self) -> Path:
        """The issuing CA's CRL (PEM), listing the ``revoked`` scenario's certificate."""
        return self._running_files().crl

    @property
    def client_cert(self) -> tuple[Path, Path]:
        """``(certificate chain PEM, private key PEM)`` for mutual TLS."""
        files = self._running_files()
        return (files.client_chain, files.client_key)

    @property
    def files(self) -> LabFiles:
        """Every path the lab uses (chains and keys per scenario, DH parameters...)."""
        return self._running_files()

    # --- display
    def __repr__(self) -> str:
        state = f"{len(self._ports)} servers on {self.bind}" if self.running else "stopped"
        return f"<Lab {state}>"

    def _repr_html_(self) -> str:
        e = html.escape
        if not self.running:
            return (
                f"<p>{e(repr(self))}: call <code>start()</code> or use <code>get_lab()</code>.</p>"
            )
        return (
            f"<p>TLS course lab: {len(self._ports)} servers on <code>{e(self.bind)}</code>; "
            f"trust <code>{e(str(self.ca_bundle))}</code> to verify them.</p>"
            + _scenario_rows_html(self)
        )


#: ``Scenario.server`` -> (most connections at once, most from one address). These servers
#: spend a thread and a descriptor per connection, so they stay small; the truncation
#: server drops the oldest connection of the busiest address at its cap, the legacy one
#: refuses a client that already holds its share (so 8 hostile addresses leave room).
_SIDE_CAPS: dict[str, tuple[int, int | None]] = {"tls12-legacy": (24, 2), "truncating": (16, None)}


def _acme_server(files: LabFiles) -> AcmeServer:
    """The lab's ACME CA (:mod:`helpers.acme.server`), not started yet.

    It signs with the online issuing CA the build certified for it (``acme-ca.pem``,
    ``acme-ca-key.pem``: :func:`helpers.lab.build._acme_issuing_ca`) and sends that CA's
    certificate above each leaf; clients trust the lab root, ``ca.pem``. It listens on
    127.0.0.1 **always**, also when the lab is shared with a room (``--share``): an ACME
    CA proves control of a name by connecting to it (HTTP-01, RFC 8555 §8.3), and the
    teacher's machine cannot reach the web server on a student's laptop, so a shared
    ACME CA could validate nobody but the teacher. For the same reason HTTP-01 always
    connects to loopback: a name the lab maps to its (possibly classroom) bind address
    is still validated on this machine, where the ACME client and its challenge server run.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from .. import pki
    from ..acme.server import AcmeServer

    cert = x509.load_pem_x509_certificate(files.acme_ca.read_bytes())
    key = serialization.load_pem_private_key(files.acme_ca_key.read_bytes(), password=None)
    # parent=None: the root's key is not here (never written), and the chain a client is
    # sent stops below the root anyway: [leaf, ACME CA].
    issuer = pki.CA.from_parts(cert, key, parent=None)
    return AcmeServer(issuer, [cert], host="127.0.0.1", domain=DOMAIN, resolve=_loopback_address)


def _loopback_address(name: str) -> str:
    """Where the lab's ACME CA connects for HTTP-01: the lab's own hosts table when it
    says loopback (a notebook may map a name to 127.0.0.2), else 127.0.0.1."""
    address = names.lookup(name)
    try:
        if address is not None and ipaddress.ip_address(address).is_loopback:
            return address
    except ValueError:  # not an address literal: not loopback either
        pass
    return "127.0.0.1"


def _side_server(
    scenario: Scenario, files: LabFiles, bind: str, port: int
) -> LegacyRenegotiationServer | TruncatingServer:
    """The server of a scenario the reactor cannot play (``Scenario.server``): the
    hand-written TLS 1.2 server without RFC 5746 (:mod:`helpers.lab.tls12_legacy`), or
    the one that hangs up without close_notify (:mod:`helpers.lab.truncating`). Bound
    like the others (a shared lab's ``bind`` may be a network address)."""
    try:
        network = not ipaddress.ip_address(bind).is_loopback
    except ValueError:  # "" or a name: not a loopback literal
        network = True
    if scenario.server == "tls12-legacy":
        return LegacyRenegotiationServer(
            files.chains[scenario.name],
            files.keys[scenario.name],
            host=bind,
            port=port,
            allow_network=network,
            app=app_for(scenario),  # the same page and /scenario.json as every lab site
            max_connections=_SIDE_CAPS["tls12-legacy"][0],
            max_per_address=_SIDE_CAPS["tls12-legacy"][1] or 2,
        )
    if scenario.server == "truncating":
        return TruncatingServer(
            server_context(scenario, files),
            app_for(scenario),
            host=bind,
            port=port,
            allow_network=network,
            max_connections=_SIDE_CAPS["truncating"][0],
        )
    raise LabError(
        f"Scenario {scenario.name!r} names an unknown server {scenario.server!r}.",
        "Use 'reactor', 'tls12-legacy' or 'truncating'.",
    )


def _scenario_rows_html(lab: Lab | RemoteLab) -> str:
    """The scenario table shown by both kinds of lab."""
    e = html.escape
    rows = []
    for name, scenario in lab.scenarios.items():
        verdict = scenario.expect.describe()
        if scenario.strict is not None:
            verdict += f"; with {', '.join(scenario.check_flags)}: {scenario.strict.describe()}"
        rows.append(
            f"<tr><td><code>{e(name)}</code></td><td>{e(scenario.title)}</td>"
            f"<td><a href='{e(lab.url(name))}'>{e(lab.url(name))}</a></td>"
            f"<td><code>{e(verdict)}</code></td></tr>"
        )
    head = "<tr><th>scenario</th><th>title</th><th>URL</th><th>default Python client</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


_shared: Lab | RemoteLab | None = None
_shared_lock = threading.Lock()
_atexit_registered = False


def _adopt(lab: Lab | RemoteLab) -> Lab | RemoteLab | None:
    """Make ``lab`` this process's lab (lock held); return the one it replaces."""
    global _shared, _atexit_registered
    previous, _shared = _shared, lab
    if not _atexit_registered:
        atexit.register(_stop_shared)
        _atexit_registered = True
    return previous if previous is not lab else None


def get_lab() -> Lab | RemoteLab:
    """The lab of this process (kernel): started on the first call, reused afterwards.

    Re-running a notebook cell calls this again and gets the same running lab, so it
    never fails with "address already in use". The lab stops when the process exits.

    If the environment variable ``TLS_COURSE_LAB`` holds a teacher's join URL with the
    lab CA's fingerprint after ``#`` (``http://10.0.0.5:8446/#3F2A9B1C77D0E4A5``, as the
    teacher's terminal prints it), the kernel joins that lab instead of starting its own
    (see :func:`join`): every notebook then works against the teacher's servers without
    a change. Set it before starting JupyterLab; kernels inherit it. A URL without the
    fingerprint is refused (:class:`~helpers.errors.UsageError`): there is no insecure
    opt-out through the environment.
    """
    with _shared_lock:
        if _shared is None or not _shared.running:
            source = os.environ.get(LAB_ENV, "").strip()
            if source and "#" not in source:
                from .remote.joined import _no_fingerprint

                raise _no_fingerprint(f"{LAB_ENV}={source}")
            lab: Lab | RemoteLab = RemoteLab(source).start() if source else Lab().start()
            _adopt(lab)
            return lab
        return _shared


def join(
    url: str,
    fingerprint: str | None = None,
    *,
    timeout: float = 5.0,
    insecure_no_fingerprint: bool = False,
) -> RemoteLab:
    """Join the teacher's lab at ``url`` and make it this kernel's lab.

    ``url`` is what the teacher's ``python -m helpers.lab --share`` prints,
    ``http://10.0.0.5:8446/#3F2A9B1C77D0E4A5`` (``10.0.0.5:8446/#...`` also works; the
    port defaults to 8446). The part after ``#`` is the lab CA's SHA-256 fingerprint, or
    at least its first 16 hex digits, as the teacher's terminal shows it; it may instead
    be given as ``fingerprint``. It is required: the join endpoint is plain HTTP, and the
    fingerprint is what proves that the CA, and everything the lab signed with it (CRL,
    chains, ports, client key), is the teacher's. Without it ``join()`` refuses with a
    :class:`~helpers.errors.UsageError`. ``insecure_no_fingerprint=True`` joins anyway,
    trusting whoever answers first, with a warning and a red banner (for a teacher's
    own experiments, never in class). ``timeout`` bounds the whole join, in seconds.
    See :mod:`helpers.lab.remote` for what is checked and what is left.

    From now on :func:`get_lab` and :func:`running_lab` return this lab, and
    :mod:`helpers.diagnose` trusts its CA for lab names. A lab :func:`get_lab` had
    started in this kernel is stopped. ``lab.stop()`` leaves the teacher's lab.
    """
    remote = RemoteLab(
        url, fingerprint, timeout=timeout, insecure_no_fingerprint=insecure_no_fingerprint
    ).start()
    with _shared_lock:
        previous = _adopt(remote)
    if previous is not None:
        previous.stop()
    return remote


def running_lab() -> Lab | RemoteLab | None:
    """The lab :func:`get_lab` started (or :func:`join` joined) in this process, if it is
    still running; never starts one."""
    lab = _shared
    return lab if lab is not None and lab.running else None


def _stop_shared() -> None:
    if _shared is not None:
        _shared.stop()
