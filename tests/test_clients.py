"""helpers.clients: every client of notebook 09's runbook, run for real through the lab's proxy.

Each fetch runs in a subprocess with an environment built from nothing (this machine's own
SSL_CERT_FILE, REQUESTS_CA_BUNDLE, PIP_CERT... must not decide), over loopback, through the
lab's TLS-inspecting proxy (helpers/lab/proxy.py). Every client must fail without the
inspection root and work with it, given its own way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from helpers import clients
from helpers.errors import UsageError
from helpers.lab import SCENARIOS, Lab

NOT_TRUSTED = {"untrusted-root", "unknown-issuer"}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(scenarios={n: SCENARIOS[n] for n in ("valid", "expired")}) as running:
        yield running


@pytest.fixture(scope="module")
def bundle(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runbook's fix: certifi's roots plus the exported inspection root, in one file."""
    path = tmp_path_factory.mktemp("bundle") / "bundle.pem"
    path.write_text(Path(certifi.where()).read_text() + lab.proxy.inspection_ca.read_text())
    return path


PYTHON_AND_CURL = ("requests", "urllib", "httpx", "aiohttp", "truststore", "curl")


@pytest.mark.parametrize("client", PYTHON_AND_CURL)
def test_every_client_fails_through_the_inspecting_proxy_and_works_with_the_bundle(
    lab: Lab, bundle: Path, client: str
) -> None:
    before = clients.fetch(client, lab.url("valid"), proxy=lab.proxy.inspecting)
    assert not before.ok and before.kind in NOT_TRUSTED, before
    # The proxy sends its root along: OpenSSL says "self-signed certificate in certificate chain".
    assert "self-signed certificate in certificate chain" in before.message, before
    after = clients.fetch(client, lab.url("valid"), proxy=lab.proxy.inspecting, cafile=bundle)
    assert after.ok and after.status == 200, after
    assert bundle.name in after.settings


@pytest.mark.parametrize("client", PYTHON_AND_CURL)
def test_through_the_inspecting_proxy_an_expired_site_is_the_proxys_error_page(
    lab: Lab, bundle: Path, client: str
) -> None:
    """The client now trusts the proxy, and the proxy judges the real server: 502."""
    verdict = clients.fetch(client, lab.url("expired"), proxy=lab.proxy.inspecting, cafile=bundle)
    if client in ("requests", "httpx", "aiohttp", "curl"):
        assert verdict.ok and verdict.status == 502, verdict  # an HTTP answer, from the proxy
    else:
        assert not verdict.ok and "502" in verdict.message, verdict  # urllib raises HTTPError


def test_direct_and_through_the_plain_tunnel_the_lab_root_is_enough(lab: Lab) -> None:
    direct = clients.fetch("requests", lab.url("valid"), cafile=lab.ca_bundle)
    tunnel = clients.fetch("httpx", lab.url("valid"), proxy=lab.proxy.tunnel, cafile=lab.ca_bundle)
    assert direct.ok and tunnel.ok, (direct, tunnel)
    expired = clients.fetch(
        "curl", lab.url("expired"), proxy=lab.proxy.tunnel, cafile=lab.ca_bundle
    )
    assert (expired.ok, expired.kind) == (False, "expired"), expired


def test_pip_downloads_through_the_inspecting_proxy_only_with_the_bundle(
    lab: Lab, bundle: Path
) -> None:
    index = lab.url("valid") + "simple/"
    before = clients.fetch("pip", index, proxy=lab.proxy.inspecting)
    assert not before.ok and before.kind in NOT_TRUSTED, before
    after = clients.fetch("pip", index, proxy=lab.proxy.inspecting, env={"PIP_CERT": str(bundle)})
    assert after.ok, after


def test_uv_reads_ssl_cert_file_not_other_tools_variables(lab: Lab, bundle: Path) -> None:
    if clients._tool("uv") is None:
        pytest.skip("uv is not installed here (it is in the dev extra)")
    index = lab.url("valid") + "simple/"
    other = {"PIP_CERT": str(bundle), "REQUESTS_CA_BUNDLE": str(bundle)}
    verdict = clients.fetch("uv", index, proxy=lab.proxy.inspecting, env=other)
    assert not verdict.ok and verdict.kind == "unknown-issuer", verdict
    assert "invalid peer certificate" in verdict.message
    fixed = clients.fetch(
        "uv", index, proxy=lab.proxy.inspecting, env={"SSL_CERT_FILE": str(bundle)}
    )
    assert fixed.ok, fixed


@pytest.mark.skipif(
    sys.platform != "linux", reason="truststore reads OpenSSL's files only on Linux"
)
def test_truststore_on_linux_reads_the_os_store_which_ssl_cert_file_stands_in_for(
    lab: Lab, bundle: Path
) -> None:
    url, proxy = lab.url("valid"), lab.proxy.inspecting
    assert clients.fetch("truststore", url, proxy=proxy, env={"SSL_CERT_FILE": str(bundle)}).ok
    ignored = clients.fetch("truststore", url, proxy=proxy, env={"REQUESTS_CA_BUNDLE": str(bundle)})
    assert not ignored.ok and ignored.kind in NOT_TRUSTED


def test_aiohttp_reads_https_proxy_only_with_trust_env(lab: Lab, bundle: Path) -> None:
    """Without trust_env aiohttp goes direct: the lab's own certificate, which this bundle
    (certifi + inspection root) does not trust; with it, through the proxy, it works."""
    env = {"HTTPS_PROXY": lab.proxy.inspecting}
    direct = clients.fetch("aiohttp", lab.url("valid"), cafile=bundle, env=env)
    assert not direct.ok and direct.kind in NOT_TRUSTED, direct
    proxied = clients.fetch("aiohttp", lab.url("valid"), cafile=bundle, env=env, trust_env=True)
    assert proxied.ok, proxied


@pytest.mark.parametrize("client", ("requests", "urllib", "httpx", "curl"))
def test_no_proxy_sends_a_host_direct(lab: Lab, client: str) -> None:
    """HTTPS_PROXY points at the inspecting proxy; NO_PROXY names the host: the client goes
    direct and meets the lab's own certificate, which the lab root verifies."""
    env = {"HTTPS_PROXY": lab.proxy.inspecting, "https_proxy": lab.proxy.inspecting}
    through = clients.fetch(client, lab.url("valid"), cafile=lab.ca_bundle, env=env)
    assert not through.ok and through.kind in NOT_TRUSTED, through
    host = lab.host("valid")
    direct = clients.fetch(
        client,
        lab.url("valid"),
        cafile=lab.ca_bundle,
        env={**env, "NO_PROXY": host, "no_proxy": host},
    )
    assert direct.ok, direct


def test_which_tool_reads_what_is_made_of_real_runs(lab: Lab) -> None:
    table = clients.which_tool_reads_what(
        lab,
        clients=["requests", "urllib", "curl"],
        variables=("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"),
    )
    assert table.columns == (
        clients.NOTHING,
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "CURL_CA_BUNDLE",
        clients.OWN,
    )
    for client in ("requests", "urllib", "curl"):
        assert not table.rows[client][clients.NOTHING].ok  # the inspection root is in no store
        assert table.rows[client][clients.OWN].ok  # verify=, context=, --cacert
    assert "REQUESTS_CA_BUNDLE" in table.reads("requests")
    assert "SSL_CERT_FILE" not in table.reads(
        "requests"
    )  # requests trusts certifi, not OpenSSL's paths
    assert "SSL_CERT_FILE" in table.reads("urllib")
    assert "REQUESTS_CA_BUNDLE" not in table.reads("urllib")
    assert "CURL_CA_BUNDLE" in table.reads("curl")
    assert "CURL_CA_BUNDLE" in table.reads("requests")  # requests' fallback variable
    html = table._repr_html_()
    assert "<table" in html and "requests" in html and "✘" in html and "✔" in html
    assert "| requests |" in table.markdown()
    assert str(table).splitlines()[0].startswith("client")


def test_mistakes_in_the_call_are_usage_errors(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a file"):
        clients.fetch("requests", lab.url("valid"), cafile=tmp_path / "missing.pem")
    with pytest.raises(UsageError, match="not a variable"):
        clients.fetch("urllib", lab.url("valid"), env={"PATH": "/tmp"})
    with pytest.raises(UsageError, match="no option for a CA bundle"):
        clients.fetch("uv", lab.url("valid") + "simple/", cafile=lab.ca_bundle)
    with pytest.raises(UsageError, match="DNS"):
        clients.fetch("uv", lab.url("valid") + "simple/")  # direct: uv would look the lab name up
    with pytest.raises(UsageError, match="No such client"):
        clients.which_tool_reads_what(lab, clients=["wget"])
    with pytest.raises(UsageError, match="No such client"):
        clients.fetch("wget", lab.url("valid"))


def test_installed_lists_only_known_clients() -> None:
    found = clients.installed()
    assert set(found) <= set(clients.CLIENTS)
    assert {"requests", "urllib", "httpx", "aiohttp", "truststore"} <= set(
        found
    )  # course dependencies


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        # curl up to 8.16 (measured: 7.88.1, 8.14.1) ...
        (
            "curl: (60) SSL certificate problem: self-signed certificate in certificate chain\n"
            "More details here: https://curl.se/docs/sslcerts.html\n",
            "untrusted-root",
        ),
        ("curl: (60) SSL certificate problem: certificate has expired\n", "expired"),
        # ... and from 8.17, which verifies after the handshake (measured: 8.22.0, OpenSSL 3.6.5)
        (
            "curl: (60) SSL certificate OpenSSL verify result: self-signed certificate in "
            "certificate chain (19)\nMore details here: https://curl.se/docs/sslcerts.html\n",
            "untrusted-root",
        ),
        (
            "curl: (60) SSL certificate OpenSSL verify result: certificate has expired (10)\n",
            "expired",
        ),
    ],
)
def test_curl_verdicts_are_read_in_both_of_curls_wordings(output: str, kind: str) -> None:
    # The forky cell (curl 8.22) read these as a bare "error" until both wordings were known.
    ran = clients.ToolRun(60, output, None)
    verdict = clients._tool_verdict("curl", "https://valid.lab.localhost/", ran, 0.0, "")
    assert (verdict.ok, verdict.kind) == (False, kind), verdict
    assert verdict.message.startswith("curl: (60) SSL certificate")
