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
    params=("text",),
    hints=[
        "Split the text on spaces: the second word is the version number.",
        "Then split '3.0.13' on dots and turn each part into an int.",
        "Some versions carry a letter, like 1.1.1w: keep only the leading digits of each part.",
    ],
)
def openssl_version_tuple(answer):
    mine = ssl.OPENSSL_VERSION
    got = answer(mine)
    assert got is not None, "return a tuple of three ints, such as (3, 0, 13)"
    assert isinstance(got, tuple), f"return a tuple, not {type(got).__name__}"
    assert len(got) == 3 and all(type(n) is int for n in got), (
        f"return exactly three ints, such as (3, 0, 13), not {got!r}"
    )
    want = _from_version_number(ssl.OPENSSL_VERSION_NUMBER)
    if got != want and got == tuple(ssl.OPENSSL_VERSION_INFO[:3]):
        raise AssertionError(
            f"you returned {got}, which is ssl.OPENSSL_VERSION_INFO[:3]; but OPENSSL_VERSION_INFO "
            f"{tuple(ssl.OPENSSL_VERSION_INFO)} decodes OpenSSL 3's version number in the old 1.x "
            f"layout, so the patch number lands in 4th place: the library is {want}. Parse the text."
        )
    assert got == want, f"for {mine!r} you returned {got}, but the library says {want}"
    for text, want in _SAMPLES.items():
        got = answer(text)
        assert got == want, f"for {text!r} you returned {got!r}, expected {want}"


_NAMES = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def _negotiates(lab, scenario: str) -> ssl.TLSVersion | None:
    """Connect with a default client to a lab server pinned to one version."""
    ctx = ssl.create_default_context(cafile=str(lab.ca_bundle))
    try:
        with (
            socket.create_connection(lab.address(scenario), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=lab.host(scenario)) as tls,
        ):
            return _NAMES[str(tls.version())]
    except (ssl.SSLError, ConnectionResetError):
        return None  # refused: by our client (version, security level) or by the server


def _why_not(got: list[ssl.TLSVersion], accepted: list[ssl.TLSVersion]) -> str:
    """One sentence on the most likely reason ``got`` differs from ``accepted``."""
    ctx = ssl.create_default_context()
    if any(v in (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.MAXIMUM_SUPPORTED) for v in got):
        return (
            " MINIMUM_SUPPORTED and MAXIMUM_SUPPORTED are placeholders for 'the library's limit', "
            "not versions: turn them into the real versions they stand for."
        )
    legacy = [v for v in got if v not in accepted and v < ssl.TLSVersion.TLSv1_2]
    if legacy and ctx.security_level >= 1:
        build = (
            " (this Python was built with --with-ssl-default-suites=openssl, as Debian and "
            "Ubuntu build theirs)"
            if ctx.minimum_version == ssl.TLSVersion.MINIMUM_SUPPORTED
            else ""
        )
        return (
            f" Here create_default_context().minimum_version is {ctx.minimum_version.name}{build}, "
            f"but the range is not the whole story: above security level 0, OpenSSL 3.1+ does not "
            f"even offer TLS 1.0/1.1, and OpenSSL 3.0 offers them but refuses their SHA-1/MD5 "
            f"handshake signatures (so against the lab's servers, which sign, they never "
            f"complete); this context is at level {ctx.security_level} (ctx.security_level)."
        )
    if sorted(got) != got:
        return " List them oldest first."
    return ""


@exercise(
    "nb00",
    params=(),
    hints=[
        "Make the context: ctx = ssl.create_default_context(), then look at ctx.minimum_version "
        "and ctx.maximum_version.",
        "MINIMUM_SUPPORTED and MAXIMUM_SUPPORTED are placeholders; replace them with the oldest "
        "(TLSv1) and newest (TLSv1_3) real versions. Then keep [v for v in ssl.TLSVersion if ...] "
        "between the two.",
        "The range is not the whole story: when ctx.security_level >= 1, OpenSSL 3.1+ does not "
        "offer TLS 1.0/1.1 at all and OpenSSL 3.0 refuses their SHA-1/MD5 handshake signatures, "
        "so against servers that sign their key exchange (the lab's do) the real minimum is "
        "TLS 1.2. This matters on Debian/Ubuntu Pythons, whose minimum_version is "
        "MINIMUM_SUPPORTED.",
    ],
)
def default_client_versions(answer):
    got = answer()
    assert got is not None, "return a list of ssl.TLSVersion values, oldest first"
    assert isinstance(got, (list, tuple)), (
        f"return a list of ssl.TLSVersion values, not {type(got).__name__}"
    )
    got = list(got)
    assert all(isinstance(v, ssl.TLSVersion) for v in got), (
        f"return ssl.TLSVersion values (such as ssl.TLSVersion.TLSv1_2), not {got!r}"
    )
    from ..lab import get_lab

    lab = get_lab()
    accepted = [
        version
        for scenario in ("tls-1.0-only", "tls-1.1-only", "tls-1.2-only", "valid")
        if (version := _negotiates(lab, scenario)) is not None
    ]
    assert got == accepted, (
        f"you returned {[v.name for v in got]}, but real handshakes with lab servers pinned to "
        f"each version succeeded for {[v.name for v in accepted]}.{_why_not(got, accepted)}"
    )
