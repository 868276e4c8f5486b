"""helpers.names: lab names resolve to loopback in-process, and never reach DNS."""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
from collections.abc import Iterator

import pytest
import requests

from helpers import names, netguard
from helpers.errors import OfflineViolation
from helpers.lab import Lab

# Audit hooks cannot be removed, so one recorder is added once and switched on per test.
# It sees exactly what the *real* getaddrinfo is asked (the C function raises the event).
_seen: list[str] = []
_recording = False
_hook_added = False


def _recorder(event: str, args: tuple) -> None:
    if _recording and event in ("socket.getaddrinfo", "socket.gethostbyname"):
        host = args[0]
        _seen.append(host.decode() if isinstance(host, bytes) else str(host))


@contextlib.contextmanager
def real_lookups() -> Iterator[list[str]]:
    """Record every host name the real resolver is asked about inside the block."""
    global _recording, _hook_added
    if not _hook_added:
        sys.addaudithook(_recorder)
        _hook_added = True
    _seen.clear()
    _recording = True
    try:
        yield _seen
    finally:
        _recording = False


def test_resolving_is_scoped() -> None:
    before = names.table()  # another test's lab may be running: compare with that
    assert names.lookup("demo.lab.localhost") is None
    with names.resolving({"demo.lab.localhost": "127.0.0.1"}):
        assert names.installed()
        info = socket.getaddrinfo("demo.lab.localhost", 443, type=socket.SOCK_STREAM)
        assert {ai[4] for ai in info} == {("127.0.0.1", 443)}
        assert socket.gethostbyname("DEMO.lab.localhost.") == "127.0.0.1"  # case, trailing dot
        assert names.table()["demo.lab.localhost"] == "127.0.0.1"
    assert names.lookup("demo.lab.localhost") is None
    assert names.table() == before
    if not before:  # nothing else needs the wrapper: it is gone, the original is back
        assert not names.installed()
        assert socket.getaddrinfo is names._real_getaddrinfo


def test_canonical_name_and_service_port() -> None:
    with names.resolving({"demo.lab.localhost": "127.0.0.1"}):
        info = socket.getaddrinfo(
            "demo.lab.localhost",
            "https",
            socket.AF_INET,
            socket.SOCK_STREAM,
            0,
            socket.AI_CANONNAME,
        )
        assert info[0][3] == "demo.lab.localhost"
        assert info[0][4] == ("127.0.0.1", 443)
        # Asking for IPv6 only: the table has an IPv4 address, so there is no answer.
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("demo.lab.localhost", 443, socket.AF_INET6)


def test_lab_names_never_reach_the_real_resolver() -> None:
    with names.resolving({"demo.lab.localhost": "127.0.0.1"}), real_lookups() as seen:
        socket.getaddrinfo("demo.lab.localhost", 80)
        with pytest.raises(socket.gaierror, match="not in the lab's hosts table"):
            socket.getaddrinfo("typo.lab.localhost", 80)  # unknown lab name: not forwarded either
        socket.getaddrinfo("localhost", 80)  # everything else passes through untouched
    assert "localhost" in seen and "127.0.0.1" in seen
    assert not [h for h in seen if names.is_lab_name(h)]


def test_only_lab_names_can_be_added() -> None:
    with pytest.raises(ValueError, match="only lab names"):
        names.add("example.com")
    with pytest.raises(ValueError):
        names.add("x.lab.localhost", "not-an-address")
    assert names.lookup("x.lab.localhost") is None


def test_guard_trips_if_a_lab_name_leaks() -> None:
    """A lab name that reaches the real resolver is stopped by the guard, never sent to DNS.

    Order-independent: an earlier test may have left this process's shared lab running,
    in which case the hosts table answers unknown lab names itself (gaierror).
    """
    assert netguard.active()
    assert names.lookup("leak.lab.localhost") is None
    with pytest.raises(OfflineViolation):
        names._real_getaddrinfo("leak.lab.localhost", 443)
    expected = socket.gaierror if names.installed() else OfflineViolation
    with pytest.raises(expected):
        socket.getaddrinfo("leak.lab.localhost", 443)


def test_requests_and_raw_ssl_by_name_with_a_lab() -> None:
    before = names.table()
    with Lab() as lab, real_lookups() as seen:
        response = requests.get(lab.url("valid"), verify=lab.ca_bundle)
        assert response.status_code == 200
        with pytest.raises(requests.exceptions.SSLError, match="certificate has expired"):
            requests.get(lab.url("expired"), verify=lab.ca_bundle)
        host = lab.host("valid")
        ctx = ssl.create_default_context(cafile=lab.ca_bundle)
        with socket.create_connection((host, lab.port("valid")), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                assert tls.version() == "TLSv1.3"
                assert tls.getpeercert()["subjectAltName"] == (("DNS", host),)
    assert seen, "the real resolver was asked for the numeric address"
    assert not [h for h in seen if names.is_lab_name(h)], seen
    # The lab took its names with it (reference counts: another lab's stay).
    assert names.table() == before
    if not before:
        assert not names.installed()


# --------------------------------------------------------------------------- issue 13 (N1)

SPELLINGS = [
    "demo.lab.localhost\u3002",  # ideographic full stop: the audit's leak
    "demo.lab.localhost\uff0e",  # fullwidth full stop
    "demo\uff61lab.localhost",  # halfwidth ideographic full stop
    "ｄｅｍｏ.lab.localhost",  # fullwidth letters
    "DEMO.Lab.LocalHost.",  # case and a trailing dot
    "ＤＥＭＯ.lab.localhost\u3002",
]


@pytest.mark.parametrize("spelled", SPELLINGS)
def test_unicode_spellings_of_a_lab_name_are_lab_names(spelled: str) -> None:
    assert names.is_lab_name(spelled)
    assert names._normalise(spelled) == "demo.lab.localhost"
    # The same name Python's idna codec (what socket.getaddrinfo uses) would send to DNS:
    if not spelled.isascii():
        assert spelled.encode("idna").decode().rstrip(".").lower() == "demo.lab.localhost"


@pytest.mark.parametrize(
    "other",
    ["example.com\u3002", "lab.l\u043ecalhost", "demo.lab.localhost\u3002evil.com", "localhost"],
)
def test_lookalikes_are_not_lab_names(other: str) -> None:
    assert not names.is_lab_name(other)


@pytest.mark.parametrize("spelled", SPELLINGS)
def test_unicode_spellings_never_reach_the_real_resolver(spelled: str) -> None:
    """Audit N1 (idna_leak.py): 'expired.lab.localhost。' went to DNS as expired.lab.localhost."""
    with names.resolving({"demo.lab.localhost": "127.0.0.1"}), real_lookups() as seen:
        info = socket.getaddrinfo(spelled, 443, type=socket.SOCK_STREAM)
        assert {ai[4] for ai in info} == {("127.0.0.1", 443)}
        assert socket.gethostbyname(spelled) == "127.0.0.1"
        with pytest.raises(socket.gaierror, match="not in the lab's hosts table"):
            socket.getaddrinfo("typo.lab.localhost\u3002", 443)
    assert seen == ["127.0.0.1"], seen  # only the number, never a name


def test_a_lab_name_with_no_lab_running_is_a_lab_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no lab, no wrapper: a helper about to connect asks refuse_unserved() first."""
    from helpers.errors import LabError

    asked: list[object] = []
    monkeypatch.setattr(names, "_table", {})
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: asked.append(a) or [])
    with pytest.raises(LabError, match="no lab is running") as info:
        names.refuse_unserved("expired.lab.localhost\u3002")
    assert "get_lab()" in info.value.hint
    names.refuse_unserved("example.com")  # not a lab name: not this function's business
    names.refuse_unserved("127.0.0.1")
    with names.resolving({"demo.lab.localhost": "127.0.0.1"}):
        names.refuse_unserved("DEMO.lab.localhost.")  # served
        with pytest.raises(LabError, match="not one of the running lab's names"):
            names.refuse_unserved("typo.lab.localhost")
    assert asked == []
