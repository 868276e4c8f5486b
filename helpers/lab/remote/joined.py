"""The student's side: :class:`RemoteLab`, a joined lab with the accessors of Lab (notebook 02).

:meth:`RemoteLab.start` is the whole join, in order, and nothing is written or mapped
before every check has passed:

1. fetch the signed description, within one deadline (:mod:`helpers.lab.remote.joining`);
2. open it (:mod:`helpers.lab.remote.signing`): the CA's fingerprint must be the one the
   student was given (:mod:`helpers.lab.remote.fingerprint`), the signer must be
   certified by that CA for signing descriptions, and the signature must cover the
   exact bytes;
3. keep the scenarios this copy of the course knows, with the teacher's ports
   (:mod:`helpers.lab.remote.description`), and check every chain, the CRL and the
   client certificate against the CA once more (:mod:`helpers.lab.remote.material`);
4. write the files into a fresh directory per CA fingerprint and endpoint, never over
   files another kernel may be using (:mod:`helpers.lab.remote.files`);
5. map every lab name to the teacher's address in :mod:`helpers.names`, like lines in
   ``/etc/hosts`` but only in this process, and forward the IP-address scenario from an
   ephemeral loopback port (:mod:`helpers.lab.remote.forward`).

:meth:`RemoteLab.stop` undoes step 5 and lets the directory be pruned by a later join.
Everything else is the accessors :class:`helpers.lab.Lab` has (``url``, ``address``,
``ca_bundle``, ``files``...), answered from what ``start()`` learned.
:func:`helpers.lab.join` and :func:`helpers.lab.get_lab` (with ``TLS_COURSE_LAB`` set)
create one.
"""

from __future__ import annotations

import html
import os
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from ... import names
from ...errors import LabError, UsageError
from ..build import cache_dir
from ..scenarios import SCENARIOS, Scenario
from .addresses import _url_host
from .description import LAB_ENV, _scenarios_from
from .files import InUse, JoinedFiles, prune, write_join
from .fingerprint import _expected_fingerprint, short_fingerprint
from .forward import _Forwarder
from .joining import JOIN_TIMEOUT, _fetch, _parse_source
from .material import checked_material
from .signing import open_envelope

#: The fingerprint form every message shows.
EXAMPLE_URL = "http://10.0.0.5:8446/#3F2A9B1C77D0E4A5"


class InsecureJoinWarning(UserWarning):
    """A lab was joined without a CA fingerprint: nothing proves it is the teacher's."""


def _no_fingerprint(what: str) -> UsageError:
    return UsageError(
        f"{what} has no CA fingerprint, so nothing could tell the teacher's lab from an "
        "impostor's answering in its place.",
        "Copy the join URL with the part after '#' from the teacher's terminal or the "
        f"board, e.g. join('{EXAMPLE_URL}').",
    )


class RemoteLab:
    """A teacher's lab, joined over the classroom network: the same accessors as :class:`Lab`.

    ``source`` is the join URL the teacher's ``python -m helpers.lab --share`` prints,
    ``http://10.0.0.5:8446/#3F2A9B1C77D0E4A5``: the part after ``#`` is the lab CA's
    SHA-256 fingerprint (at least its first 16 hex digits), which never leaves this
    machine. It may instead be passed as ``fingerprint=``. It is required: a lab whose CA
    has another fingerprint, or whose description that CA did not sign, is refused.
    ``insecure_no_fingerprint=True`` joins without one, with a warning and a red banner:
    then whoever answers first is trusted. ``directory``: where the files are written
    (default: the per-user cache, :func:`helpers.lab.cache_dir` ``/joined``).

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
        insecure_no_fingerprint: bool = False,
    ) -> None:
        self._source = _parse_source(source)
        given = _expected_fingerprint(fingerprint)
        if given and self._source.fingerprint and given != self._source.fingerprint:
            raise UsageError(
                "The URL and the fingerprint= argument name different fingerprints.",
                "Give the fingerprint once, as the teacher shows it.",
            )
        self._expected = given or self._source.fingerprint
        if self._expected is None and not insecure_no_fingerprint:
            raise _no_fingerprint(f"The join URL {self._source.url}")
        self.insecure = self._expected is None
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
        self._in_use: InUse | None = None

    # --- lifecycle
    def start(self) -> RemoteLab:
        """Fetch the teacher's description, verify it, write the files, map the names."""
        with self._lock:
            if self._running:
                return self
            if self.insecure:
                warnings.warn(
                    f"Joining {self._source.url} WITHOUT a CA fingerprint: nothing proves this "
                    "is the teacher's lab (insecure_no_fingerprint=True).",
                    InsecureJoinWarning,
                    stacklevel=3,
                )
            url = self._source.url
            body, peer = _fetch(self._source, self.timeout)
            opened = open_envelope(body, url, self._expected)  # nothing is trusted before this
            scenarios, ports = _scenarios_from(opened.description, url)
            material = checked_material(opened.description, opened.ca, scenarios, url)
            parent = self._directory or cache_dir() / "joined"
            files, in_use = write_join(
                parent, opened.fingerprint.replace(":", ""), self._source.host,
                self._source.port, material,
            )  # fmt: skip
            prune(parent, keep=files.directory)
            addresses: dict[str, tuple[str, int]] = {}
            forwarders: list[_Forwarder] = []
            registered: list[tuple[str, str]] = []
            try:
                for name, scenario in scenarios.items():
                    if names.is_lab_name(scenario.host):
                        names.add(scenario.host, peer)  # like a line in /etc/hosts
                        registered.append((scenario.host, peer))
                        addresses[name] = (peer, ports[name])
                    else:  # an IP literal (ip-san): forward it from this machine,
                        # from a port the system picks, never one the description chose
                        forward = _Forwarder((scenario.host, 0), (peer, ports[name]), self.timeout)
                        forwarders.append(forward)
                        addresses[name] = (scenario.host, forward.port)
            except BaseException:
                _undo(registered, forwarders)
                in_use.release()
                raise
            self._address, self._fingerprint = peer, opened.fingerprint
            self._scenarios, self._addresses, self._files = scenarios, addresses, files
            self._names, self._forwarders, self._running = registered, forwarders, True
            self._in_use = in_use
        return self

    def stop(self) -> None:
        """Forget the teacher's names, stop forwarding, release the files. Idempotent."""
        with self._lock:
            if not self._running:
                return
            _undo(self._names, self._forwarders)
            self._names, self._forwarders, self._addresses = [], [], {}
            self._running = False
            if self._in_use is not None:
                self._in_use.release()  # a later join may prune the directory
                self._in_use = None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def proxy(self) -> NoReturn:
        """A joined lab has no CONNECT proxy (:mod:`helpers.lab.proxy`): it would run on the
        teacher's loopback, which no student can reach."""
        raise LabError(
            "The proxy runs only in a local lab: a joined lab's proxies would listen on the "
            "teacher's loopback, out of your reach.",
            "Start a lab of your own for notebook 09's proxy cells: helpers.lab.Lab().start().",
        )

    @property
    def acme(self) -> NoReturn:
        """A joined lab has no ACME CA (notebook 10): the teacher's would validate HTTP-01
        by connecting from the teacher's machine to a web server on the student's, which
        it cannot reach (and its CA listens on the teacher's loopback only)."""
        raise LabError(
            "The teacher's ACME CA validates names from the teacher's machine, which cannot "
            "reach a challenge server on yours, so a joined lab has no ACME CA.",
            f"Run notebook 10 with a lab of your own: unset {LAB_ENV} and restart the "
            "kernel, or use helpers.lab.Lab().start().",
        )

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
                f"Call helpers.lab.join('{EXAMPLE_URL}') with the URL the teacher shows.",
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
        unverified = " UNVERIFIED (no fingerprint)" if self.insecure else ""
        return (
            f"<RemoteLab {len(self._addresses)} servers at {self._address} via "
            f"{self.source}{unverified}>"
        )

    def _repr_html_(self) -> str:
        from .. import _scenario_rows_html

        e = html.escape
        if not self._running:
            return (
                f"<p>{e(repr(self))}: call <code>helpers.lab.join({e(repr(EXAMPLE_URL))})</code> "
                "with the URL and fingerprint the teacher shows.</p>"
            )
        checked = "it matches the one you gave, and the lab CA signed what was downloaded"
        banner = ""
        if self.insecure:
            checked = "NOT checked: compare it with the one the teacher shows"
            banner = (
                "<p style='background:#b00020;color:white;padding:0.5em;font-weight:bold'>"
                "Joined WITHOUT a CA fingerprint (insecure_no_fingerprint=True): nothing "
                "proves this is the teacher's lab. Anyone in the room could have answered. "
                "Join again with the URL and '#fingerprint' the teacher shows.</p>"
            )
        files = self._running_files()
        mtls = (
            "shared"
            if files.client_key is not None
            else "not shared (mutual TLS works on the teacher's screen)"
        )
        return (
            banner + f"<p>Joined the teacher's lab at <code>{e(self.source)}</code>: "
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
