"""helpers.live: a live check that could not reach a host says so, in time, and never says "drift".

Everything here stays on loopback (the offline guard is on for the whole suite). "No
network" is the resolver's own answer when no DNS server can be reached
(``EAI_AGAIN``, "Temporary failure in name resolution"), given by a stand-in for
``socket.getaddrinfo`` that never calls the real one; a hanging resolver is one that
blocks; a timeout is a real TCP server on 127.0.0.1 that accepts and never answers; a
proxy is a real ``CONNECT`` proxy on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from helpers import live
from helpers.clients import NO_PROXY_VARIABLES, PROXY_VARIABLES

from .proxies import connect_proxy

# The notebook's own expectations (notebook 02): real names, never resolved here.
PUBLIC = {
    "https://expired.badssl.com/": {"expired"},
    "https://wrong.host.badssl.com/": {"hostname-mismatch"},
    "https://revoked.badssl.com/": {"ok", "expired"},
    "https://www.python.org/": {"ok"},
    "https://pypi.org/": {"ok"},
}


@pytest.fixture(autouse=True)
def _no_proxy_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES + NO_PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _is_local(host: object) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    return text in ("localhost", "127.0.0.1", "::1") or text.endswith(".lab.localhost")


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resolver of a machine without network: every public name fails with EAI_AGAIN."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def offline_getaddrinfo(host, *args, **kwargs):
        if _is_local(host):
            return real(host, *args, **kwargs)
        asked.append(str(host))
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline_getaddrinfo)
    return asked


@contextlib.contextmanager
def tarpit() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


# ------------------------------------------------------------------------- no network


def test_no_network_is_reported_as_no_network_not_drift(no_dns: list[str]) -> None:
    started = time.monotonic()
    report = live.survey(PUBLIC)
    took = time.monotonic() - started
    assert sorted(no_dns) == sorted({u.split("/")[2] for u in PUBLIC})  # each name asked once
    assert [r.verdict for r in report] == [live.NO_NETWORK] * len(PUBLIC)
    assert report.drifted == []
    assert report.summary.startswith("No network: none of the 5 host names could be looked up")
    assert "nothing drifted" in report.summary and "drifted since" not in report.summary.lower()
    assert all("no network, or no DNS server answers" in r.words for r in report)
    assert took < 2, f"an offline survey should fail fast, took {took:.1f} s"


def test_a_failed_lookup_inside_requests_is_no_network_too(no_dns: list[str]) -> None:
    # The check itself (requests -> urllib3 -> getaddrinfo) meets the same resolver.
    from helpers import diagnose

    d = diagnose.check("https://expired.badssl.com/", via="requests", timeout=2, probe=False)
    assert d.kind == "dns"
    verdict, words = live.verdict_of(d, {"expired"})
    assert verdict == live.NO_NETWORK and "no network" in words


def test_a_resolver_that_hangs_is_cut_off_by_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # glibc with an unreachable DNS server waits (timeout x attempts) before EAI_AGAIN.
    real, release = socket.getaddrinfo, threading.Event()

    def hanging_getaddrinfo(host, *args, **kwargs):
        if _is_local(host):
            return real(host, *args, **kwargs)
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    try:
        started = time.monotonic()
        report = live.survey(PUBLIC, deadline=1.5)
        took = time.monotonic() - started
    finally:
        release.set()
    assert took < 2.5, f"the deadline is 1.5 s, the survey took {took:.1f} s"
    assert {r.verdict for r in report} == {live.NO_NETWORK}
    assert all("lookup had not finished after 1.5 s" in r.words for r in report)
    assert report.drifted == []


# ---------------------------------------------------------------------------- timeout


def test_a_server_that_never_answers_is_a_timeout_bounded_in_time() -> None:
    with tarpit() as port:
        urls = {f"https://127.0.0.1:{port}/{i}": {"ok"} for i in range(6)}
        started = time.monotonic()
        report = live.survey(urls, timeout=1.0, deadline=10)
        took = time.monotonic() - started
    assert [r.verdict for r in report] == [live.TIMED_OUT] * 6
    assert [r.got for r in report] == ["timeout"] * 6
    assert report.drifted == []
    # All six in parallel: about one timeout, not six of them (nor two waves).
    assert took < 3.5, f"six 1-second timeouts in parallel took {took:.1f} s"
    assert "No host could be reached" in report.summary and "nothing drifted" in report.summary
    assert "set HTTPS_PROXY" in report.summary  # names resolved, nothing answered: say why


def test_the_deadline_bounds_a_slow_host_too() -> None:
    with tarpit() as port:
        started = time.monotonic()
        report = live.survey({f"https://127.0.0.1:{port}/": {"ok"}}, timeout=20, deadline=1.0)
        took = time.monotonic() - started
    assert took < 1.8
    (row,) = report.rows
    assert row.verdict == live.TIMED_OUT and "no verdict after 1 s" in row.words


def test_a_refused_connection_is_unreachable_not_drift() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    report = live.survey({f"https://127.0.0.1:{port}/": {"ok"}}, timeout=2, deadline=5)
    assert report.rows[0].verdict == live.UNREACHABLE and report.drifted == []


# ----------------------------------------------------------------------- a real answer


def test_a_host_that_answers_differently_is_drift_and_only_that() -> None:
    from helpers.lab import get_lab

    lab = get_lab()
    report = live.survey(
        {lab.url("expired"): {"expired"}, lab.url("wrong-host"): {"ok"}}, timeout=5, deadline=10
    )
    expired, wrong = report.rows
    assert expired.verdict == live.AS_EXPECTED and expired.verify_code == 10
    assert wrong.verdict == live.DRIFTED and wrong.got == "hostname-mismatch"
    assert report.drifted == [lab.url("wrong-host")]
    assert "1 of 2 hosts answered as expected" in report.summary


# ----------------------------------------------------------------------------- proxies


def test_proxy_for_reads_https_proxy_and_no_proxy_as_requests_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert live.proxy_for("https://pypi.org/") is None  # nothing set: direct
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "python.org,.internal.example")
    assert live.proxy_for("https://pypi.org/") == "http://127.0.0.1:3128"
    assert live.proxy_for("https://www.python.org/") is None
    assert live.proxy_for("https://ci.internal.example/") is None


def test_live_checks_go_through_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from helpers.lab import get_lab

    lab = get_lab()
    # Like a proxy at the edge of a company network, this one resolves the name itself:
    # expired.test (never resolvable here, RFC 6761 §6.2) reaches the lab's expired server,
    # whose CA the live checks (certifi's roots) do not know.
    url = "https://expired.test/"
    with connect_proxy(lab.port("expired")) as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        for via in ("requests", "ssl"):
            report = live.survey({url: {"unknown-issuer"}}, via=via, timeout=5, deadline=10)
            (row,) = report.rows
            assert row.verdict == live.AS_EXPECTED, (via, row)
            assert row.via_proxy == proxy
        # One tunnel per client (http.client says HTTP/1.0, helpers.live HTTP/1.1).
        assert [line.rsplit(" ", 1)[0] for line in seen] == ["CONNECT expired.test:443"] * 2
        # A lab name never goes through the proxy (it would ask its DNS): direct, answered.
        report = live.survey({lab.url("expired"): {"expired"}}, timeout=5, deadline=10)
        assert report.rows[0].via_proxy is None and report.rows[0].verdict == live.AS_EXPECTED
        assert len(seen) == 2
        # NO_PROXY wins, as with requests: the same check goes direct, to a lookup that
        # cannot succeed here (the offline guard, and .test never resolves).
        monkeypatch.setenv("NO_PROXY", "expired.test")
        report = live.survey({url: {"unknown-issuer"}}, timeout=5, deadline=10)
        assert report.rows[0].via_proxy is None and report.rows[0].verdict == live.NO_NETWORK
        assert len(seen) == 2


def test_a_proxy_that_wants_a_password_is_a_proxy_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with connect_proxy(answer=answer) as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        for via in ("requests", "ssl"):
            # A public name: through a proxy it is never looked up here, the proxy would.
            report = live.survey({"https://pypi.org/": {"ok"}}, via=via, timeout=3, deadline=6)
            (row,) = report.rows
            assert row.verdict == live.PROXY_PROBLEM, (via, row)
            assert "user name and password (407)" in row.words
            assert "proxy did not let the checks through" in report.summary
        assert [line.rsplit(" ", 1)[0] for line in seen] == ["CONNECT pypi.org:443"] * 2


# ------------------------------------------------------------------------- issue 13: N1


@pytest.mark.parametrize("host", ["valid.lab.localhost", "valid.lab.localhost\u3002"])
def test_a_lab_name_with_no_lab_running_never_reaches_the_resolver(
    no_lab_spy: list[str], host: str
) -> None:
    from helpers.errors import LabError

    for expect in ({f"https://{host}:8443/": {"ok"}}, {**PUBLIC, f"https://{host}/": {"ok"}}):
        with pytest.raises(LabError, match="no lab is running") as info:
            live.survey(expect, timeout=1, deadline=2)
        assert "\n" not in str(info.value) and "get_lab()" in info.value.hint
    assert no_lab_spy == []  # refused before any name was looked up, public ones included


def test_a_lab_name_is_never_sent_to_a_proxy() -> None:
    """The proxy would look the name up in its own DNS, and could not reach this machine."""
    from helpers.errors import UsageError

    with connect_proxy() as (proxy, seen):
        for host in ("valid.lab.localhost", "valid.lab.localhost\u3002"):
            with pytest.raises(UsageError, match="is a lab name") as info:
                live.open_tunnel(proxy, host, 443, timeout=2)
            assert "\n" not in str(info.value) and info.value.hint
        assert seen == []


# ------------------------------------------------------------------ errors inside a check


def test_an_error_inside_a_hosts_check_is_that_rows_sentence(capfd) -> None:
    """A check that raises (diagnose.check's UsageError for a URL it cannot use) used to
    kill its thread: a traceback on stderr, and the row shown as a "timeout"."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        refused = f"https://127.0.0.1:{s.getsockname()[1]}/"
    urls = {
        "https://127.0.0.1:99999/": {"ok"},  # diagnose.check: invalid port
        "https://[::1/": {"ok"},  # diagnose.check: not a URL it can read
        refused: {"ok"},  # an honest row beside them
    }
    capfd.readouterr()
    started = time.monotonic()
    report = live.survey(urls, timeout=2, deadline=8)
    took = time.monotonic() - started
    port, bracket, honest = report.rows
    for row, words in ((port, "invalid port"), (bracket, "is not a URL")):
        assert row.verdict == live.CHECK_FAILED and row.got == "error", row
        assert words in row.words and "\n" not in row.words, row.words
    assert honest.verdict == live.UNREACHABLE
    assert report.drifted == [] and "check failed" in report.summary
    assert "Names resolved but nothing answered" not in report.summary
    assert capfd.readouterr().err == ""
    assert took < 6, f"the errors should be reported at once, took {took:.1f} s"


def test_any_exception_in_a_check_is_one_sentence_not_a_timeout(capfd) -> None:
    from helpers.errors import UsageError

    def broken(url, **kwargs):
        if url.endswith(":1/"):
            raise UsageError("The label is longer than 63 characters.", "Shorten it.")
        raise KeyError("chunks")

    capfd.readouterr()
    report = live.survey(
        {"https://127.0.0.1:1/": {"ok"}, "https://127.0.0.1:2/": {"ok"}},
        check=broken,
        deadline=5,
    )
    first, second = report.rows
    assert first.verdict == second.verdict == live.CHECK_FAILED
    assert first.words == "The label is longer than 63 characters."
    assert second.words == "the check raised KeyError: 'chunks'"
    assert report.elapsed < 3 and capfd.readouterr().err == ""
