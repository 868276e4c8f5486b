"""`python -m helpers.lab --json` driven by the real openssl s_client and curl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.lab import SCENARIOS

pytestmark = pytest.mark.tools

NAMES = list(SCENARIOS)
REQUEST = b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Any]]:
    """The lab CLI as a subprocess: its JSON line, then it serves until SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),  # TLS_COURSE_CACHE from conftest: the same throw-away cache
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode() if proc.stderr else "no output"
        info = json.loads(line)
        info["_pid"] = proc.pid
        yield info
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # stop it by its PID, as a teacher's Ctrl-C would
        try:
            code = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    assert code == 0, "SIGTERM must stop the lab cleanly"


def test_json_summary_shape(served: dict[str, Any]) -> None:
    assert set(served) >= {"ca_bundle", "crl", "client_cert", "client_key", "scenarios"}
    assert set(served["scenarios"]) == set(SCENARIOS)
    for name, entry in served["scenarios"].items():
        assert entry["url"] == f"https://{entry['host']}:{entry['port']}/"
        assert entry["expect"] == SCENARIOS[name].expect.as_json()
        cli = SCENARIOS[name].verdict("openssl")  # issue 14: what openssl s_client says
        assert entry["cli"] == {"ok": cli.ok, "verify_code": cli.verify_code}
    for key in ("ca_bundle", "crl", "client_cert", "client_key"):
        assert os.path.isfile(served[key])


def _s_client(served: dict[str, Any], name: str, *extra: str) -> tuple[int, str]:
    entry = served["scenarios"][name]
    host, port = entry["host"], entry["port"]
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-verify_return_error"]
    cmd += ["-CAfile", served["ca_bundle"], "-ign_eof"]
    if host[0].isdigit():
        cmd += ["-verify_ip", host]  # -verify_hostname only matches DNS names
    else:
        cmd += ["-servername", host, "-verify_hostname", host]
    proc = subprocess.run([*cmd, *extra], input=REQUEST, capture_output=True, timeout=20)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def _curl(served: dict[str, Any], name: str, *extra: str) -> tuple[int, str, str]:
    entry = served["scenarios"][name]
    host, port = entry["host"], entry["port"]
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", served["ca_bundle"]]
    if not host[0].isdigit():
        cmd += ["--resolve", f"{host}:{port}:127.0.0.1"]  # no lookup, no DNS
    proc = subprocess.run([*cmd, *extra, entry["url"]], capture_output=True, timeout=20)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode()


@pytest.mark.parametrize("name", NAMES)
def test_openssl_s_client_verdict(served: dict[str, Any], name: str) -> None:
    expect = SCENARIOS[name].verdict("openssl")
    code, out = _s_client(served, name)
    if expect.ok:
        assert code == 0, out
        assert "Verify return code: 0 (ok)" in out
        assert "HTTP/1.1 200 OK" in out
        return
    assert code != 0, out
    # The truncation server sends its whole page, then the bare TCP end: the error follows it.
    assert ("HTTP/1.1 200 OK" in out) is (SCENARIOS[name].server == "truncating"), out
    if expect.verify_code is not None:
        assert f"Verify return code: {expect.verify_code} (" in out, out
    assert expect.error is not None and expect.error.lower() in out.lower(), out


@pytest.mark.parametrize("name", NAMES)
def test_curl_verdict(served: dict[str, Any], name: str) -> None:
    expect = SCENARIOS[name].verdict("curl")
    code, body, err = _curl(served, name)
    if expect.ok:
        assert code == 0, err
        assert f"scenario <code>{name}</code>" in body
        return
    assert code != 0 and bool(body) is (SCENARIOS[name].server == "truncating"), err
    assert expect.error is not None and expect.error.lower() in err.lower(), err


def test_tools_with_the_client_certificate(served: dict[str, Any]) -> None:
    cert, key = served["client_cert"], served["client_key"]
    code, out = _s_client(
        served, "client-cert-required", "-cert", cert, "-cert_chain", cert, "-key", key
    )
    assert code == 0 and "HTTP/1.1 200 OK" in out, out
    code, body, err = _curl(served, "client-cert-required", "--cert", cert, "--key", key)
    assert code == 0 and "TLS Course Student" in body, err


def test_tools_with_the_crl(served: dict[str, Any]) -> None:
    code, out = _s_client(served, "revoked", "-crl_check", "-CRL", served["crl"])
    assert code != 0 and "Verify return code: 23 (certificate revoked)" in out, out
    code, _, err = _curl(served, "revoked", "--crlfile", served["crl"])
    assert code != 0 and "revoked" in err.lower(), err
