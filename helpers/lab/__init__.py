"""An offline badssl.com: one broken TLS server per scenario on 127.0.0.1 (introduced in notebook 02).

Theory of operation
-------------------
badssl.com is a set of web servers, each broken in one instructive way: an expired
certificate, a missing intermediate, TLS 1.0 only... The course needs the same thing
without the internet, so :class:`Lab` builds it on this machine:

1. **Certificates** (:mod:`helpers.lab.build`): a private root CA and an intermediate,
   then one certificate per scenario, each made wrong on purpose by its
   :class:`~helpers.lab.scenarios.CertRecipe` (EC P-256 unless the scenario is about
   RSA). They are cached outside the repository and rebuilt when stale.
2. **Servers** (:mod:`helpers.lab.server`): one listening socket per scenario, port chosen
   by the OS, all served by a single thread. Each port has its own
   :class:`ssl.SSLContext`, because protocol versions and client-certificate demands
   are per context. They speak just enough HTTP/1.1 for ``requests``, ``curl`` and a
   browser (:mod:`helpers.lab.pages`).
3. **Names** (:mod:`helpers.names`): every scenario has a name under ``lab.localhost``;
   while a lab runs, a process-local hosts table answers those names with 127.0.0.1,
   so ``requests.get(lab.url("expired"), verify=lab.ca_bundle)`` works and no lab name
   ever reaches a DNS server.

The lab root is trusted by nobody until you say so: pass ``lab.ca_bundle`` as
``cafile=``/``verify=``, or ``--cacert`` to curl. Every scenario states what a default
Python client decides (:class:`Expect`), and the tests hold the lab to it.

>>> lab = get_lab()                        # doctest: +SKIP
>>> requests.get(lab.url("valid"), verify=lab.ca_bundle).status_code
200
"""

from __future__ import annotations

import atexit
import html
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from .. import names
from ..errors import LabError
from .build import LabFiles, cache_dir, ensure, server_context
from .pages import app_for
from .scenarios import DOMAIN, SCENARIOS, CertRecipe, Expect, Scenario
from .server import Reactor

__all__ = [
    "DOMAIN",
    "SCENARIOS",
    "CertRecipe",
    "Expect",
    "Lab",
    "Scenario",
    "cache_dir",
    "get_lab",
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
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        bind: str = "127.0.0.1",
        *,
        scenarios: Mapping[str, Scenario] | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.bind = bind
        self._scenarios: Mapping[str, Scenario] = dict(scenarios or SCENARIOS)
        self._files: LabFiles | None = None
        self._reactor: Reactor | None = None
        self._ports: dict[str, int] = {}
        self._names: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    # --- lifecycle
    def start(self) -> Lab:
        """Build or load certificates, listen on every scenario port, register the names."""
        with self._lock:
            if self._reactor is not None:
                return self
            files = ensure(self.directory, self._scenarios)
            reactor = Reactor(name=f"tls-lab-{id(self):x}")
            ports: dict[str, int] = {}
            try:
                for name, scenario in self._scenarios.items():
                    listener = reactor.add_site(
                        server_context(scenario, files),
                        app_for(scenario),
                        host=self.bind,
                        name=name,
                    )
                    ports[name] = listener.getsockname()[1]
                reactor.start()
            except OSError as exc:
                reactor.stop()
                raise LabError(
                    f"The lab could not listen on {self.bind!r}: {exc.strerror or exc}.",
                    "Use the default bind='127.0.0.1', or an address of this machine.",
                ) from exc
            address = _connect_address(self.bind)
            registered: list[tuple[str, str]] = []
            for scenario in self._scenarios.values():
                if names.is_lab_name(scenario.host):
                    names.add(scenario.host, address)
                    registered.append((scenario.host, address))
            self._files, self._reactor, self._ports, self._names = files, reactor, ports, registered
        return self

    def stop(self) -> None:
        """Close every port and connection, join the server thread, forget the names."""
        with self._lock:
            reactor, self._reactor = self._reactor, None
            if reactor is None:
                return
            reactor.stop()
            for host, address in self._names:
                names.remove(host, address)
            self._names = []
            self._ports = {}

    @property
    def running(self) -> bool:
        return self._reactor is not None

    @property
    def connections(self) -> int:
        """How many client connections the servers hold open right now."""
        reactor = self._reactor
        return reactor.connections if reactor is not None else 0

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
        """``https://expired.lab.localhost:PORT/``."""
        host = self.host(name)
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port(name)}/"

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
        rows = []
        for name, scenario in self._scenarios.items():
            verdict = scenario.expect.describe()
            if scenario.strict is not None:
                verdict += f"; with {', '.join(scenario.check_flags)}: {scenario.strict.describe()}"
            rows.append(
                f"<tr><td><code>{e(name)}</code></td><td>{e(scenario.title)}</td>"
                f"<td><a href='{e(self.url(name))}'>{e(self.url(name))}</a></td>"
                f"<td><code>{e(verdict)}</code></td></tr>"
            )
        head = "<tr><th>scenario</th><th>title</th><th>URL</th><th>default Python client</th></tr>"
        return (
            f"<p>TLS course lab: {len(rows)} servers on <code>{e(self.bind)}</code>; "
            f"trust <code>{e(str(self.ca_bundle))}</code> to verify them.</p>"
            f"<table>{head}{''.join(rows)}</table>"
        )


_shared: Lab | None = None
_shared_lock = threading.Lock()


def get_lab() -> Lab:
    """The lab of this process (kernel): started on the first call, reused afterwards.

    Re-running a notebook cell calls this again and gets the same running lab, so it
    never fails with "address already in use". The lab stops when the process exits.
    """
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            lab = Lab().start()
            if _shared is None:
                atexit.register(_stop_shared)
            _shared = lab
        return _shared


def running_lab() -> Lab | None:
    """The lab :func:`get_lab` started in this process, if it is still running; never starts one."""
    lab = _shared
    return lab if lab is not None and lab.running else None


def _stop_shared() -> None:
    if _shared is not None:
        _shared.stop()
