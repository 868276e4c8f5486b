"""The student's side: :class:`RemoteLab`, a joined lab with the accessors of Lab (notebook 02).

:meth:`RemoteLab.start` is the whole join, in order:

1. fetch the description (:mod:`helpers.lab.remote.joining`);
2. load its CA certificate and compare its fingerprint with the one the student was
   given (:mod:`helpers.lab.remote.fingerprint`);
3. keep the scenarios this copy of the course knows, with the teacher's ports
   (:mod:`helpers.lab.remote.description`);
4. write the public files to the per-user cache, one directory per CA
   (:mod:`helpers.lab.remote.files`);
5. map every lab name to the teacher's address in :mod:`helpers.names`, like lines in
   ``/etc/hosts`` but only in this process, and forward the IP-address scenario
   (:mod:`helpers.lab.remote.forward`).

:meth:`RemoteLab.stop` undoes step 5; the files stay in the cache. Everything else is
the accessors :class:`helpers.lab.Lab` has (``url``, ``address``, ``ca_bundle``,
``files``...), answered from what ``start()`` learned. :func:`helpers.lab.join` and
:func:`helpers.lab.get_lab` (with ``TLS_COURSE_LAB`` set) create one.
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ... import names, pki
from ...errors import LabError, UsageError
from ..build import cache_dir
from ..scenarios import SCENARIOS, Scenario
from .addresses import _url_host
from .description import LAB_ENV, _scenarios_from, _text
from .files import JoinedFiles, _write
from .fingerprint import _expected_fingerprint, _hex_digits, ca_fingerprint, short_fingerprint
from .forward import _Forwarder
from .joining import JOIN_TIMEOUT, _fetch, _parse_source


class RemoteLab:
    """A teacher's lab, joined over the classroom network: the same accessors as :class:`Lab`.

    ``source`` is the URL the teacher's ``python -m helpers.lab --share`` prints
    (``http://10.0.0.5:8446/``; a bare ``10.0.0.5`` means port 8446). ``fingerprint``:
    the lab CA's SHA-256 fingerprint, or its first 16+ hex digits, as the teacher shows
    it; it may also follow ``#`` in the URL. When given, a CA with another fingerprint is
    refused. ``directory``: where the public files are written (default: the per-user
    cache, :func:`helpers.lab.cache_dir` ``/joined``).

    :meth:`start` fetches the description, maps the lab names to the teacher's address
    in :mod:`helpers.names` and forwards the IP-address scenario; :meth:`stop` undoes
    both (the teacher's lab keeps running, of course). Prefer :func:`helpers.lab.join`,
    which also makes it this kernel's lab.
    """

    def __init__(
        self,
        source: str,
        fingerprint: str | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        timeout: float = JOIN_TIMEOUT,
    ) -> None:
        self._source = _parse_source(source)
        given = _expected_fingerprint(fingerprint)
        if given and self._source.fingerprint and given != self._source.fingerprint:
            raise UsageError(
                "The URL and the fingerprint= argument name different fingerprints.",
                "Give the fingerprint once, as the teacher shows it.",
            )
        self._expected = given or self._source.fingerprint
        self._directory = Path(directory) if directory is not None else None
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running = False
        self._address = ""
        self._fingerprint = ""
        self._scenarios: dict[str, Scenario] = {}
        self._addresses: dict[str, tuple[str, int]] = {}
        self._files: JoinedFiles | None = None
        self._names: list[tuple[str, str]] = []
        self._forwarders: list[_Forwarder] = []

    # --- lifecycle
    def start(self) -> RemoteLab:
        """Fetch the teacher's description, check it, write the public files, map the names."""
        with self._lock:
            if self._running:
                return self
            data, peer = _fetch(self._source, self.timeout)
            url = self._source.url
            ca_pem = _text(data, "ca_pem", url).encode("ascii", "replace")
            try:
                ca = pki.load_certificate(ca_pem)
            except ValueError:
                raise LabError(
                    f"The lab description from {url} carries no valid CA certificate.",
                    "Ask the teacher to restart the lab.",
                ) from None
            fingerprint = ca_fingerprint(ca)
            if self._expected and not _hex_digits(fingerprint).startswith(self._expected):
                raise LabError(
                    f"The lab at {url} has CA fingerprint {short_fingerprint(fingerprint)}, "
                    f"not the {short_fingerprint(self._expected)} you were given.",
                    "Do not use it: check the fingerprint with the teacher (someone in the room "
                    "may be answering in the teacher's place).",
                )
            scenarios, ports = _scenarios_from(data, url)
            files = self._write_files(data, ca, fingerprint, scenarios)
            addresses: dict[str, tuple[str, int]] = {}
            forwarders: list[_Forwarder] = []
            registered: list[tuple[str, str]] = []
            try:
                for name, scenario in scenarios.items():
                    if names.is_lab_name(scenario.host):
                        names.add(scenario.host, peer)  # like a line in /etc/hosts
                        registered.append((scenario.host, peer))
                        addresses[name] = (peer, ports[name])
                    else:  # an IP literal (ip-san): forward it from this machine
                        forward = _Forwarder(
                            (scenario.host, ports[name]), (peer, ports[name]), self.timeout
                        )
                        forwarders.append(forward)
                        addresses[name] = (scenario.host, forward.port)
            except BaseException:
                _undo(registered, forwarders)
                raise
            self._address, self._fingerprint = peer, fingerprint
            self._scenarios, self._addresses, self._files = scenarios, addresses, files
            self._names, self._forwarders, self._running = registered, forwarders, True
        return self

    def _write_files(
        self,
        data: Mapping[str, Any],
        ca: x509.Certificate,
        fingerprint: str,
        scenarios: Mapping[str, Scenario],
    ) -> JoinedFiles:
        url = self._source.url
        damaged = "Ask the teacher to restart the lab."
        parent = self._directory or cache_dir() / "joined"
        # One directory per CA: a rebuilt teacher lab (new CA) never mixes with the old one.
        directory = parent / _hex_digits(fingerprint)[:16].lower()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_bundle, crl = directory / "ca.pem", directory / "crl.pem"
        _write(ca_bundle, ca.public_bytes(serialization.Encoding.PEM))
        crl_pem = _text(data, "crl_pem", url).encode("ascii", "replace")
        try:
            x509.load_pem_x509_crl(crl_pem)
        except ValueError:
            raise LabError(
                f"The lab description from {url} carries no valid CRL.", damaged
            ) from None
        _write(crl, crl_pem)
        chains: dict[str, Path] = {}
        raw_chains = data.get("chains_pem")
        for name in scenarios:
            pem = raw_chains.get(name) if isinstance(raw_chains, dict) else None
            if not isinstance(pem, str) or not pki.load_certificates(pem.encode()):
                raise LabError(
                    f"The lab description from {url} has no chain for {name!r}.", damaged
                )
            chains[name] = directory / f"{name}-chain.pem"
            _write(chains[name], pem.encode())
        chain = key = None
        cert_pem, key_pem = data.get("client_cert_pem"), data.get("client_key_pem")
        if isinstance(cert_pem, str) and isinstance(key_pem, str):
            try:
                client = pki.load_certificate(cert_pem.encode())
                private = pki.load_private_key(key_pem.encode())
                pki.ensure_key_matches(client, private)
            except ValueError:
                raise LabError(f"The client certificate from {url} is damaged.", damaged) from None
            chain = directory / "client-chain.pem"
            _write(chain, cert_pem.encode())
            key = pki.write_private_key(directory / "client-key.pem", private)  # mode 0600
        return JoinedFiles(directory, ca_bundle, crl, chains, chain, key)

    def stop(self) -> None:
        """Forget the teacher's names, stop forwarding (the files stay in the cache). Idempotent."""
        with self._lock:
            if not self._running:
                return
            _undo(self._names, self._forwarders)
            self._names, self._forwarders, self._addresses = [], [], {}
            self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> RemoteLab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- where things are (the same names as Lab's)
    def _scenario(self, name: str) -> Scenario:
        try:
            return self._scenarios[name] if self._scenarios else SCENARIOS[name]
        except KeyError:
            raise LabError(
                f"There is no lab scenario called {name!r}.",
                "Pick one of: " + ", ".join(self._scenarios or SCENARIOS) + ".",
            ) from None

    def _running_files(self) -> JoinedFiles:
        if self._files is None or not self._running:
            raise LabError(
                "This kernel has not joined the teacher's lab (or has left it).",
                "Call helpers.lab.join(URL) with the URL the teacher shows.",
            )
        return self._files

    @property
    def source(self) -> str:
        """The join URL (without any fingerprint)."""
        return self._source.url

    @property
    def bind(self) -> str:
        """The teacher's address, as this machine reaches it."""
        return self._address

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the lab CA (``AB:CD:...``): compare it with the teacher's."""
        self._running_files()
        return self._fingerprint

    @property
    def scenarios(self) -> Mapping[str, Scenario]:
        """Every scenario the teacher serves (that this copy of the course knows)."""
        return self._scenarios or SCENARIOS

    def host(self, name: str) -> str:
        """The host name clients use for scenario ``name`` (``expired.lab.localhost``)."""
        return self._scenario(name).host

    def address(self, name: str) -> tuple[str, int]:
        """``(ip, port)`` to connect to for ``name``: the teacher's, or the local forward's."""
        self._scenario(name)
        self._running_files()
        try:
            return self._addresses[name]
        except KeyError:
            raise LabError(
                f"The teacher's lab does not serve {name!r}.", "Pick another scenario."
            ) from None

    def port(self, name: str) -> int:
        """The TCP port to use for scenario ``name``."""
        return self.address(name)[1]

    def url(self, name: str) -> str:
        """``https://expired.lab.localhost:PORT/``, as with a local lab."""
        return f"https://{_url_host(self.host(name))}:{self.port(name)}/"

    @property
    def ca_bundle(self) -> Path:
        """The teacher's lab CA certificate, written to this machine's cache."""
        return self._running_files().ca_bundle

    @property
    def crl(self) -> Path:
        """The teacher's lab CRL, written to this machine's cache."""
        return self._running_files().crl

    @property
    def client_cert(self) -> tuple[Path, Path]:
        """``(chain, key)`` for mutual TLS, if the teacher shares them."""
        files = self._running_files()
        if files.client_chain is None or files.client_key is None:
            raise LabError(
                "The teacher's lab does not share its client key, so mutual TLS "
                "(client-cert-required) only works on the teacher's machine.",
                "Watch it on the teacher's screen, ask for --share-client-key, or unset "
                f"{LAB_ENV} and use a lab on your own machine.",
            )
        return (files.client_chain, files.client_key)

    @property
    def files(self) -> JoinedFiles:
        """The public files: ``ca_bundle``, ``crl``, ``chains``; ``keys`` stay with the teacher."""
        return self._running_files()

    # --- display
    def __repr__(self) -> str:
        if not self._running:
            return f"<RemoteLab {self.source} (not joined)>"
        return f"<RemoteLab {len(self._addresses)} servers at {self._address} via {self.source}>"

    def _repr_html_(self) -> str:
        from .. import _scenario_rows_html

        e = html.escape
        if not self._running:
            return f"<p>{e(repr(self))}: call <code>helpers.lab.join(url)</code>.</p>"
        checked = (
            "it matches the one you gave"
            if self._expected
            else "compare it with the one the teacher shows"
        )
        files = self._running_files()
        mtls = (
            "shared"
            if files.client_key is not None
            else "not shared (mutual TLS works on the teacher's screen)"
        )
        return (
            f"<p>Joined the teacher's lab at <code>{e(self.source)}</code>: "
            f"{len(self._addresses)} servers on <code>{e(self._address)}</code>.<br>"
            f"Lab CA SHA-256 fingerprint <code>{e(short_fingerprint(self._fingerprint))}"
            f"</code>&hellip; ({checked}); trust <code>{e(str(files.ca_bundle))}</code> to "
            f"verify them. Client key: {e(mtls)}.</p>" + _scenario_rows_html(self)
        )


def _undo(registered: list[tuple[str, str]], forwarders: list[_Forwarder]) -> None:
    for host, address in registered:
        names.remove(host, address)
    for forward in forwarders:
        forward.stop()
