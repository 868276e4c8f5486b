"""helpers.fetch against real TLS servers on loopback (our own pki + the lab's reactor)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from helpers import fetch, live, names, plots
from helpers.errors import LiveModeOff
from helpers.lab.server import Reactor, Request, Response
from helpers.pki import CA

from .proxies import connect_proxy

DAY = dt.timedelta(days=1)


def _hello(_request: Request) -> Response:
    return Response(body=b"hello")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = CA("Fetch Test Root")
    inter = root.create_intermediate("Fetch Test Intermediate")
    leaves = {
        "good": inter.issue("127.0.0.1", "good.lab.localhost"),
        "expired": inter.issue("127.0.0.1", not_after=-3 * DAY),
        "wrong-host": inter.issue("somewhere-else.test"),
        "self-signed": CA("Lonely CA").issue("127.0.0.1"),
    }
    cafile = tmp_path_factory.mktemp("fetch") / "root.pem"
    cafile.write_bytes(root.cert_pem)
    reactor = Reactor(name="fetch-tests")
    ports = {}
    for name, leaf in leaves.items():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_server(ctx)
        ports[name] = reactor.add_site(ctx, _hello, name=name).getsockname()[1]
    # A server that accepts TCP (the kernel does, from the backlog) and never speaks TLS.
    silent = socket.create_server(("127.0.0.1", 0))
    ports["silent"] = silent.getsockname()[1]
    # A port where nothing listens: bind, note the number, close.
    with socket.create_server(("127.0.0.1", 0)) as gone:
        ports["refused"] = gone.getsockname()[1]
    reactor.start()
    try:
        yield SimpleNamespace(ports=ports, cafile=str(cafile), leaves=leaves, inter=inter)
    finally:
        reactor.stop()
        silent.close()


def _t(servers: SimpleNamespace, name: str) -> str:
    return f"127.0.0.1:{servers.ports[name]}"


def test_good_and_broken_hosts_in_order(servers: SimpleNamespace) -> None:
    order = ["expired", "good", "refused", "wrong-host", "self-signed"]
    results = fetch.fetch_certificates(
        [_t(servers, n) for n in order], cafile=servers.cafile, progress=False, timeout=3
    )
    assert [r.port for r in results] == [servers.ports[n] for n in order]
    by = dict(zip(order, results, strict=True))

    good = by["good"]
    assert good.ok and good.verified and good.error == ""
    assert good.cert == servers.leaves["good"].cert
    assert good.tls_version == "TLSv1.3"
    # The chain as sent: leaf + intermediate (never the root).
    assert good.chain[:2] == [servers.leaves["good"].cert, servers.inter.cert]

    # Broken hosts still hand over their certificate (read by the non-verifying probe).
    for name, words in [
        ("expired", "certificate has expired"),
        ("wrong-host", "mismatch"),
        ("self-signed", "unable to get local issuer certificate"),
    ]:
        r = by[name]
        assert r.ok and not r.verified, name
        assert r.cert == servers.leaves[name].cert
        assert words in r.error and r.error.endswith("."), r.error
        assert r.error.startswith("The certificate of 127.0.0.1:"), r.error

    refused = by["refused"]
    assert not refused.ok and refused.cert is None and not refused.verified
    assert refused.error == f"Connection refused: nothing is listening on {_t(servers, 'refused')}."


def test_silent_server_times_out_on_time(servers: SimpleNamespace) -> None:
    start = time.monotonic()
    (r,) = fetch.fetch_certificates([_t(servers, "silent")], timeout=0.5, progress=False)
    took = time.monotonic() - start
    assert 0.45 <= r.elapsed < 1.0 and took < 1.0
    assert not r.ok and "timed out" in r.error


def test_without_cafile_the_private_root_is_not_trusted(servers: SimpleNamespace) -> None:
    r = fetch.fetch_certificate(_t(servers, "good"), timeout=3)
    assert r.ok and not r.verified
    assert "unable to get local issuer certificate" in r.error


def test_lab_names_urls_and_tuples(servers: SimpleNamespace) -> None:
    port = servers.ports["good"]
    with names.resolving({"good.lab.localhost": "127.0.0.1"}):
        results = fetch.fetch_certificates(
            [f"https://good.lab.localhost:{port}/x", ("127.0.0.1", port)],
            cafile=servers.cafile,
            progress=False,
        )
    assert [r.host for r in results] == ["good.lab.localhost", "127.0.0.1"]
    assert all(r.verified for r in results)
    html = results._repr_html_()
    assert "good.lab.localhost:" in html and "verified" in html
    assert results.summary() == "2 hosts: 2 verified, 0 not verified, 0 without a certificate"


def test_parse_target_forms() -> None:
    assert fetch.parse_target("example.org") == fetch.Target("example.org", 443)
    assert fetch.parse_target("example.org:8443") == fetch.Target("example.org", 8443)
    assert fetch.parse_target("[::1]:8443") == fetch.Target("::1", 8443)
    assert fetch.parse_target("https://a.test/path?q") == fetch.Target("a.test", 443)
    assert fetch.parse_target(("127.0.0.1", "99")) == fetch.Target("127.0.0.1", 99)
    assert fetch.Target("::1", 8443).label == "[::1]:8443"
    with pytest.raises(ValueError):
        fetch.parse_target("host:notaport")


def test_internet_hosts_need_live_mode() -> None:
    assert not live.enabled()
    with pytest.raises(LiveModeOff, match=r"example\.com:443"):
        fetch.fetch_certificates(["example.com", "127.0.0.1:1"], progress=False)
    with pytest.raises(LiveModeOff):
        fetch.fetch_certificate("https://example.org/")


def test_results_feed_expiry_gantt(servers: SimpleNamespace) -> None:
    import matplotlib.pyplot as plt

    results = fetch.fetch_certificates(
        [_t(servers, n) for n in ("good", "expired", "refused")],
        cafile=servers.cafile,
        progress=False,
    )
    fig = plots.expiry_gantt(results, show_policy=False)
    try:
        gids = sorted(p.get_gid() for p in fig.axes[0].patches if p.get_gid())
        assert gids == ["status:error", "status:expired", f"status:{plots.VALID}"]
    finally:
        plt.close(fig)


def test_empty_input() -> None:
    assert fetch.fetch_certificates([], progress=False) == []


def test_repr_and_progress_bar(servers: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    r = fetch.fetch_certificate(_t(servers, "refused"), timeout=1)
    assert repr(r).startswith(f"<FetchResult {_t(servers, 'refused')} failed: Connection refused")
    fetch.fetch_certificates([_t(servers, "refused")], timeout=1)  # progress=True by default
    assert "certificates: 100%" in capsys.readouterr().err


def test_no_progress_bar_imports_nothing_that_warns(servers: SimpleNamespace) -> None:
    """progress=False must not import tqdm.auto: in a kernel without ipywidgets it warns on stderr."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from helpers import fetch\n"
        f"fetch.fetch_certificates(['{_t(servers, 'refused')}'], timeout=1, progress=False)\n"
        "print('tqdm.auto' in sys.modules, 'tqdm.autonotebook' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- proxies

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")


@pytest.fixture
def live_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live mode on (the hosts below look public) and no proxy from the shell."""
    monkeypatch.setattr(live, "_override", True)
    for name in PROXY_VARS + NO_PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


# somewhere-else.test is a name in the "wrong-host" server's certificate; .test never
# resolves (RFC 6761 §6.2), so only a proxy can reach it.
PUBLIC = "somewhere-else.test:443"


def test_internet_hosts_go_through_the_proxy_from_the_environment(
    servers: SimpleNamespace, live_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_proxy(servers.ports["wrong-host"]) as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        good, local = fetch.fetch_certificates(
            [PUBLIC, _t(servers, "good")], cafile=servers.cafile, progress=False, timeout=3
        )
        # The handshake ran end to end through the tunnel: the server's own certificate,
        # verified for the name we asked for.
        assert good.verified and good.cert == servers.leaves["wrong-host"].cert, good
        assert good.via_proxy == proxy
        assert seen == [f"CONNECT {PUBLIC} HTTP/1.1"]
        # Loopback never goes through the proxy: it means this machine.
        assert local.verified and local.via_proxy is None
        # A failed verification reads the certificate through the proxy too (two tunnels).
        (probed,) = fetch.fetch_certificates([PUBLIC], progress=False, timeout=3)
        assert probed.ok and not probed.verified and probed.via_proxy
        assert "unable to get local issuer certificate" in probed.error
        assert seen == [f"CONNECT {PUBLIC} HTTP/1.1"] * 3


def test_no_proxy_and_trust_env_false_go_direct(
    servers: SimpleNamespace, live_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_proxy(servers.ports["wrong-host"]) as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        direct = fetch.fetch_certificate(PUBLIC, cafile=servers.cafile, timeout=3, trust_env=False)
        monkeypatch.setenv("NO_PROXY", "somewhere-else.test")
        listed = fetch.fetch_certificate(PUBLIC, cafile=servers.cafile, timeout=3)
        assert seen == []
    for r in (direct, listed):
        # Direct means a name lookup here, which the offline guard (or the .test TLD) stops.
        assert not r.ok and r.via_proxy is None and r.error, r
    # An explicit proxy= needs no environment at all.
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    with connect_proxy(servers.ports["wrong-host"]) as (proxy, seen):
        r = fetch.fetch_certificate(PUBLIC, cafile=servers.cafile, timeout=3, proxy=proxy)
        assert r.verified and seen == [f"CONNECT {PUBLIC} HTTP/1.1"]


def test_a_proxy_that_refuses_says_so_in_one_sentence(
    servers: SimpleNamespace, live_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with connect_proxy(servers.ports["wrong-host"], answer) as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy.replace("http://", "http://ada:s3cret@"))
        r = fetch.fetch_certificate(PUBLIC, timeout=3)
    assert not r.ok and seen == [f"CONNECT {PUBLIC} HTTP/1.1"]
    assert r.error.startswith(f"The proxy {proxy} would not open a tunnel to {PUBLIC}")
    assert "s3cret" not in r.error
    assert "407 Proxy Authentication Required" in r.error and "user name and password" in r.error
    assert r.via_proxy is not None and "s3cret" not in r.via_proxy
    # A proxy that is not there at all: the sentence names the proxy, not the host.
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{servers.ports['refused']}")
    r = fetch.fetch_certificate(PUBLIC, timeout=3)
    assert not r.ok and r.error.startswith("Could not reach the proxy"), r.error
    assert "Traceback" not in r.error


# ------------------------------------------------------------------------- issue 13: N1, L8




@pytest.mark.parametrize("host", ["valid.lab.localhost", "valid.lab.localhost\u3002"])
def test_a_lab_name_with_no_lab_running_never_reaches_the_resolver(
    no_lab_spy: list[str], host: str
) -> None:
    from helpers.errors import LabError

    calls = {
        "fetch_certificate": lambda: fetch.fetch_certificate(f"{host}:8443", timeout=2),
        "fetch_certificates": lambda: fetch.fetch_certificates(
            [("127.0.0.1", 1), (host, 8443)], progress=False, timeout=2
        ),
    }
    for label, call in calls.items():
        with pytest.raises(LabError, match="no lab is running") as info:
            call()
        assert "\n" not in str(info.value) and "get_lab()" in info.value.hint, label
    assert no_lab_spy == []  # nothing was looked up, not even the loopback address first


def test_a_name_the_running_lab_does_not_serve_is_that_hosts_error(
    servers: SimpleNamespace,
) -> None:
    """With a lab running, a typo is one row's sentence, not an exception for the batch."""
    port = servers.ports["good"]
    with names.resolving({"good.lab.localhost": "127.0.0.1"}):
        good, typo = fetch.fetch_certificates(
            [f"good.lab.localhost\u3002:{port}", f"typo.lab.localhost:{port}"],
            cafile=servers.cafile,
            progress=False,
            timeout=3,
        )
    assert good.verified, good
    assert not typo.ok and "not one of the running lab's names" in typo.error, typo.error


def test_unicode_dot_spellings_of_local_names_are_local() -> None:
    for host in ("valid.lab.localhost\u3002", "LOCALHOST\uff0e", "valid\uff61lab.localhost"):
        assert fetch._is_local(host), host
        # ... so they never go through a proxy either (a proxy cannot reach this machine).
        assert fetch._proxy_of(fetch.Target(host), "http://proxy.test:3128", True) is None
    for host in ("example.com\u3002", "localhost.example.com", "127.0.0.1.nip.io"):
        assert not fetch._is_local(host), host


def _panicking(*args: object, **kwargs: object) -> None:
    """What cryptography's Rust code raises when it panics (see tests/test_pki.py)."""
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    raise panic("assertion failed: simulated")


def test_a_rust_panic_on_a_servers_certificate_is_one_sentence(
    servers: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography import x509

    def odd_version(*args: object) -> None:
        raise x509.InvalidVersion("5 is not a valid X509 version", 4)  # not a ValueError

    for loader, words in ((_panicking, "panicked"), (odd_version, "not a valid X509 version")):
        monkeypatch.setattr(x509, "load_der_x509_certificate", loader)
        one = fetch.fetch_certificate(_t(servers, "good"), cafile=servers.cafile, timeout=3)
        (many,) = fetch.fetch_certificates(
            [_t(servers, "good")], cafile=servers.cafile, progress=False, timeout=3
        )
        for r in (one, many):
            assert not r.ok and r.cert is None, r
            assert r.error.startswith(f"The certificate {_t(servers, 'good')} sent could not")
            assert words in r.error and "\n" not in r.error, r.error
