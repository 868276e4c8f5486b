"""Checks for the exercises of notebook 00 · Start here."""

from __future__ import annotations

import socket
import ssl

from . import exercise

_SAMPLES = {
    "OpenSSL 3.0.13 30 Jan 2024": (3, 0, 13),
    "OpenSSL 1.1.1w  11 Sep 2023": (1, 1, 1),
    "OpenSSL 3.5.0 8 Apr 2025": (3, 5, 0),
    "OpenSSL 10.2.17 1 Jan 2031": (10, 2, 17),
}


def _from_version_number(n: int) -> tuple[int, int, int]:
    """Decode ``ssl.OPENSSL_VERSION_NUMBER`` (0xMNNFFPPS before 3.0, 0xMNN00PPS since).

    ``ssl.OPENSSL_VERSION_INFO`` still decodes with the pre-3.0 layout, so for
    OpenSSL 3.0.22 it says (3, 0, 0, 22, 0): the patch number lands in the 4th place.
    """
    major, minor = n >> 28 & 0xF, n >> 20 & 0xFF
    if major >= 3:
        return (major, minor, n >> 4 & 0xFF)
    return (major, minor, n >> 12 & 0xFF)


@exercise(
    "nb00",
    hints=[
        "Split the text on spaces: the second word is the version number.",
        "Then split '3.0.13' on dots and turn each part into an int.",
        "Some versions carry a letter, like 1.1.1w: keep only the leading digits of each part.",
    ],
)
def openssl_version_tuple(answer):
    mine = ssl.OPENSSL_VERSION
    got = answer(mine)
    assert isinstance(got, tuple), f"return a tuple, not {type(got).__name__}"
    want = _from_version_number(ssl.OPENSSL_VERSION_NUMBER)
    assert got == want, f"for {mine!r} you returned {got}, but the library says {want}"
    for text, want in _SAMPLES.items():
        got = answer(text)
        assert got == want, f"for {text!r} you returned {got!r}, expected {want}"


def _negotiates(lab, scenario: str) -> ssl.TLSVersion | None:
    """Connect with a default client to a lab server pinned to one version."""
    ctx = ssl.create_default_context(cafile=str(lab.ca_bundle))
    try:
        with (
            socket.create_connection(lab.address(scenario), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=lab.host(scenario)) as tls,
        ):
            return {
                "TLSv1": ssl.TLSVersion.TLSv1,
                "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2,
                "TLSv1.3": ssl.TLSVersion.TLSv1_3,
            }[tls.version()]
    except ssl.SSLError:
        return None


@exercise(
    "nb00",
    hints=[
        "Make the context: ctx = ssl.create_default_context(), then look at ctx.minimum_version.",
        "MINIMUM_SUPPORTED and MAXIMUM_SUPPORTED are placeholders; on OpenSSL 3 a default client's "
        "real range is TLS 1.2 to TLS 1.3 (Python 3.10 raised the minimum, RFC 8996 deprecated 1.0/1.1).",
        "Build the answer from [v for v in ssl.TLSVersion if ...] keeping only real versions "
        "between the minimum and the maximum.",
    ],
)
def default_client_versions(answer):
    got = list(answer())
    from ..lab import get_lab

    lab = get_lab()
    accepted = [
        version
        for scenario in ("tls-1.0-only", "tls-1.1-only", "tls-1.2-only", "valid")
        if (version := _negotiates(lab, scenario)) is not None
    ]
    assert all(isinstance(v, ssl.TLSVersion) for v in got), "return ssl.TLSVersion values"
    assert got == accepted, (
        f"you returned {[v.name for v in got]}, but real handshakes with lab servers pinned to "
        f"each version succeeded for {[v.name for v in accepted]}"
    )
