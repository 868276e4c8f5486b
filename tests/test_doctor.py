"""helpers.doctor: the TLS doctor reads this machine as it is, and says what is wrong in a sentence.

Every check runs on real files and real variables (passed as ``env=``, so the test's own
environment is not changed), and with a URL the lab's servers are reached for real by every
client (helpers/clients.py) in a subprocess.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from helpers import clients, doctor
from helpers.errors import LiveModeOff
from helpers.lab import SCENARIOS, Lab
from helpers.pki import CA

ROOT = Path(__file__).resolve().parents[1]


def _about(result: doctor.Report, topic: str) -> list[doctor.Finding]:
    return [f for f in result.findings if f.topic == topic]


def test_the_report_names_both_openssls_the_store_and_certifi() -> None:
    result = doctor.report(env={})
    facts = dict(result.facts)
    assert facts["ssl is linked with"] == ssl.OPENSSL_VERSION
    assert "openssl command" in facts
    stats = ssl.create_default_context().cert_store_stats()
    assert facts["create_default_context()"] == f"{stats['x509_ca']} CA certificates loaded"
    assert certifi.where() in facts["certifi"]
    assert facts["truststore"].startswith("0.")  # a course dependency
    assert result.variables == []  # env={}: nothing set
    text, page = str(result), result._repr_html_()
    assert "TLS variables set: none" in text
    assert ssl.OPENSSL_VERSION in text and ssl.OPENSSL_VERSION in page


def test_a_variable_naming_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    missing = tmp_path / "corp-bundle.pem"
    result = doctor.report(env={"REQUESTS_CA_BUNDLE": str(missing), "PIP_CERT": str(missing)})
    for name in ("REQUESTS_CA_BUNDLE", "PIP_CERT"):
        (finding,) = _about(result, name)
        assert finding.level == doctor.PROBLEM and "does not exist" in finding.text
        assert "unset" in finding.fix
    assert not result.ok and result.findings[0].level == doctor.PROBLEM  # problems first


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "is empty"), (b"# my company root goes here\n", "holds no PEM certificate")],
    ids=["empty", "no-certificate"],
)
def test_an_empty_bundle_is_a_problem(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(content)
    (finding,) = _about(doctor.report(env={"SSL_CERT_FILE": str(path)}), "SSL_CERT_FILE")
    assert (
        finding.level == doctor.PROBLEM
        and words in finding.text
        and "trusts nothing" in finding.text
    )


def test_a_bundle_of_one_root_trusts_only_that_root(tmp_path: Path) -> None:
    """The classic mistake: REQUESTS_CA_BUNDLE=corp-root.pem, and every public site breaks."""
    root = tmp_path / "corp-root.pem"
    root.write_bytes(CA(common_name="Example Corp Root").cert_pem)
    (finding,) = _about(doctor.report(env={"REQUESTS_CA_BUNDLE": str(root)}), "REQUESTS_CA_BUNDLE")
    assert finding.level == doctor.WARNING and "single certificate" in finding.text
    assert "certifi" in finding.fix
    good = tmp_path / "bundle.pem"
    good.write_text(Path(certifi.where()).read_text() + root.read_text())
    (finding,) = _about(doctor.report(env={"REQUESTS_CA_BUNDLE": str(good)}), "REQUESTS_CA_BUNDLE")
    assert finding.level == doctor.INFO and "PEM bundle with" in finding.text


def test_a_key_inside_a_bundle_is_a_warning(tmp_path: Path) -> None:
    authority = CA(common_name="Key In Bundle CA")
    path = tmp_path / "bundle.pem"
    path.write_bytes(Path(certifi.where()).read_bytes() + authority.cert_pem + authority.key_pem())
    findings = _about(doctor.report(env={"CURL_CA_BUNDLE": str(path)}), "CURL_CA_BUNDLE")
    assert any(f.level == doctor.WARNING and "private key" in f.text for f in findings)


def test_sslkeylogfile_is_always_a_warning(tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    (finding,) = _about(doctor.report(env={"SSLKEYLOGFILE": str(keylog)}), "SSLKEYLOGFILE")
    assert (
        finding.level == doctor.WARNING
        and "decrypt" in finding.text
        and str(keylog) in finding.text
    )
    assert "unset SSLKEYLOGFILE" in finding.fix


def test_ssl_cert_dir_needs_hashed_names(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "corp-root.pem").write_bytes(CA(common_name="Unhashed Root").cert_pem)
    (finding,) = _about(doctor.report(env={"SSL_CERT_DIR": str(directory)}), "SSL_CERT_DIR")
    assert finding.level == doctor.PROBLEM and "openssl rehash" in finding.fix
    (directory / "0123abcd.0").symlink_to(directory / "corp-root.pem")
    (finding,) = _about(doctor.report(env={"SSL_CERT_DIR": str(directory)}), "SSL_CERT_DIR")
    assert finding.level == doctor.INFO


def test_proxy_variables_https_scheme_and_passwords() -> None:
    env = {
        "HTTPS_PROXY": "https://alice:s3cret@proxy.example:3128",
        "https_proxy": "http://proxy.example:3128",
    }
    result = doctor.report(env=env)
    texts = [f.text for f in _about(result, "HTTPS_PROXY")]
    assert any("starts with https://" in t for t in texts)
    assert any("different proxies" in t for t in texts)
    assert "s3cret" not in str(result) and "s3cret" not in result._repr_html_()
    assert ("HTTPS_PROXY", "https://alice:****@proxy.example:3128") in result.variables


def test_a_trust_store_with_no_ca_says_what_to_run(tmp_path: Path) -> None:
    """A Python whose OpenSSL finds no CA file and no directory (a python.org macOS install
    before 'Install Certificates.command'), made real by pointing both at empty places."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "SSL_CERT_FILE": str(empty / "none.pem"),
        "SSL_CERT_DIR": str(empty),
    }
    done = subprocess.run(
        [sys.executable, "-m", "helpers.doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # a problem was found
    assert "0 CA certificates loaded" in done.stdout
    assert "Python's default context has 0 CA certificates" in done.stdout
    fix = (
        "apt install ca-certificates"
        if sys.platform.startswith("linux")
        else "Install Certificates"
    )
    assert fix in done.stdout
    assert "SSL_CERT_FILE names" in done.stdout and "does not exist" in done.stdout


def test_a_non_lab_url_needs_live_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import live

    monkeypatch.setattr(live, "_override", False)
    with pytest.raises(LiveModeOff):
        doctor.report("https://example.com/", env={})
    done = subprocess.run(
        [sys.executable, "-m", "helpers.doctor", "https://example.com/"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--live" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- with a lab URL


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(scenarios={n: SCENARIOS[n] for n in ("valid", "expired")}) as running:
        yield running


def test_a_lab_url_through_each_client_with_the_right_variables(lab: Lab) -> None:
    """The lab's package index, with each tool's own variable naming the lab CA: every
    installed client gets through (uv is left out: it would look the lab name up itself)."""
    ca = str(lab.ca_bundle)
    env = {"REQUESTS_CA_BUNDLE": ca, "SSL_CERT_FILE": ca, "CURL_CA_BUNDLE": ca, "PIP_CERT": ca}
    index = lab.url("valid") + "simple/"
    result = doctor.report(index, lab=lab, env=env)
    assert result.diagnosis is not None and result.diagnosis.ok
    tried = [v.client for v in result.clients]
    expected = [c for c in clients.installed() if c != "uv"]
    assert tried == expected and {"requests", "urllib", "httpx", "aiohttp", "pip"} <= set(tried)
    assert all(v.ok for v in result.clients), [str(v) for v in result.clients]
    assert not _about(result, "clients")


def test_a_tool_that_reads_another_store_is_named(lab: Lab) -> None:
    """SSL_CERT_FILE alone: the ssl-based clients trust the lab, requests (certifi) does not."""
    result = doctor.report(
        lab.url("valid"),
        lab=lab,
        env={"SSL_CERT_FILE": str(lab.ca_bundle)},
        clients=["requests", "urllib", "httpx"],
    )
    verdicts = {v.client: v for v in result.clients}
    assert not verdicts["requests"].ok and verdicts["requests"].kind == "unknown-issuer"
    assert verdicts["urllib"].ok and verdicts["httpx"].ok
    (finding,) = _about(result, "clients")
    assert finding.level == doctor.PROBLEM and "requests" in finding.text
    assert "urllib" not in finding.text
    assert "REQUESTS_CA_BUNDLE" in finding.fix


def test_a_broken_server_is_the_finding(lab: Lab) -> None:
    result = doctor.report(lab.url("expired"), lab=lab, env={}, clients=["urllib", "curl"])
    (server,) = _about(result, "server")
    assert server.level == doctor.PROBLEM and "expired" in server.text
    assert result.url == lab.url("expired")
    assert all(not v.ok for v in result.clients)
    assert "Each client, with your variables" in str(result)
    assert "<h5>The server</h5>" in result._repr_html_()


def test_a_proxy_in_the_way_is_told_apart_from_trust_and_its_password_never_shown(
    lab: Lab,
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: a proxy that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "HTTPS_PROXY": f"http://alice:s3cret@127.0.0.1:{port}",
        "SSL_CERT_FILE": str(lab.ca_bundle),
    }
    result = doctor.report(
        lab.url("valid"), lab=lab, env=env, clients=["requests", "urllib", "curl"]
    )
    assert result.diagnosis is not None and result.diagnosis.ok  # check() goes direct
    assert all(
        not v.ok and v.kind not in ("untrusted-root", "unknown-issuer") for v in result.clients
    )
    (finding,) = _about(result, "clients")
    assert "on the way" in finding.text and "NO_PROXY" in finding.fix
    shown = str(result) + result._repr_html_()
    assert "s3cret" not in shown and "alice:****@" in shown


def test_pip_config_cert_and_trusted_host(tmp_path: Path) -> None:
    """pip.conf is where many companies put the fix, and sometimes the wrong one."""
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\ntrusted-host = pypi.example\ncert = {tmp_path / 'gone.pem'}\n")
    result = doctor.report(env={"PIP_CONFIG_FILE": str(config)})
    (cert,) = _about(result, "pip config global.cert")
    assert cert.level == doctor.PROBLEM and "does not exist" in cert.text
    (trusted,) = _about(result, "pip config global.trusted-host")
    assert trusted.level == doctor.WARNING and "without checking its certificate" in trusted.text
    assert "global.trusted-host=pypi.example" in dict(result.facts)["pip config"]
