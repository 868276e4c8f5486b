"""The :class:`Scan`: everything one scan learned about a server (introduced in notebook 08).

A scan is a list of facts, each from its own handshakes: which versions were accepted
(and the refusal reason for the others), the TLS 1.2-or-older suites accepted at one
version, the TLS 1.3 suite negotiated, the key exchanges read from the wire, the
certificate, the trust verdict and the HSTS header. It holds no judgement: that is
:func:`helpers.probe.grade`'s job. In a notebook it shows as a report (see ``report``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .attempts import VERSIONS
from .hsts import HSTS
from .key_exchange import KeyExchange
from .keys import CertificateFacts
from .report import _scan_html
from .suites import Suite
from .trust import Trust

__all__ = ["Scan"]


@dataclass
class Scan:
    """Everything :func:`scan` learned about one server. Display it, or pass it to :func:`grade`."""

    target: str
    host: str
    port: int
    server_hostname: str | None
    versions: dict[str, bool] = field(default_factory=dict)
    version_errors: dict[str, str] = field(default_factory=dict)
    suites: list[Suite] = field(default_factory=list)
    suites_version: str | None = None
    suites_tried: int = 0
    tls13_suite: str | None = None
    tls13_bits: int | None = None
    tls13_group: str | None = None  # from SSLSocket.group() on Python >= 3.15, else None
    key_exchanges: list[KeyExchange] = field(default_factory=list)
    certificate: CertificateFacts | None = None
    trust: Trust | None = None
    hsts: HSTS | None = None
    http_status: str | None = None
    handshakes: int = 0
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)
    # The server asked for a client certificate and refused the handshake without one,
    # after agreeing on version and suite (so those still count as accepted).
    client_certificate_required: bool = False

    @property
    def accepted_versions(self) -> list[str]:
        """Accepted versions, oldest first (``"TLSv1.2"``, ``"TLSv1.3"``)."""
        return [v for v in VERSIONS if self.versions.get(v)]

    @property
    def forward_secrecy(self) -> bool:
        """Does any accepted way in use ephemeral (EC)DH? (TLS 1.3 always does.)"""
        return bool(self.versions.get("TLSv1.3")) or any(s.forward_secret for s in self.suites)

    def __repr__(self) -> str:
        return (
            f"<Scan {self.target}: {', '.join(self.accepted_versions) or 'no TLS'}, "
            f"{len(self.suites)} suites, {self.handshakes} handshakes in {self.elapsed:.2f} s>"
        )

    def _repr_html_(self) -> str:
        return _scan_html(self)
