"""A lab shared with a room (helpers.lab.remote): teacher CLI, join(), TLS_COURSE_LAB, on loopback.

The teacher's lab runs as the teacher runs it, ``python -m helpers.lab --share``, in its
own process bound to 127.0.0.2 (Linux routes all of 127.0.0.0/8 to ``lo``), and is
stopped by its PID. The "student" is this test process: it has none of the teacher's
files and only the names :class:`~helpers.lab.RemoteLab` maps, so every success below
went through the join endpoint. The offline guard is on throughout.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import helpers.lab
from helpers import diagnose, names, pki
from helpers.errors import ConnectionProblem, LabError, UsageError
from helpers.lab import LAB_ENV, Lab, RemoteLab, ShareServer, join, running_lab
from helpers.lab.remote import ca_fingerprint, short_fingerprint

TEACHER = "127.0.0.2"


def _start_cli(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start ``python -m helpers.lab ARGS --json``; return it and its JSON line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", *args, "--json"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line:
        _stop(proc)
        pytest.fail(f"the lab CLI printed nothing: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> int:
    """Stop the process this test started, by its PID."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return proc.returncode


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Iterator[dict[str, Any]]:
    """The teacher's CLI, sharing on 127.0.0.2 with the join endpoint on a free port."""
    lab_dir = tmp_path_factory.mktemp("teacher")
    proc, summary = _start_cli(
        "--bind", TEACHER, "--share", "--share-port", "0", "--dir", str(lab_dir), cwd=repo_root
    )
    try:
        yield summary
    finally:
        assert _stop(proc) == 0


@pytest.fixture(autouse=True)
def _no_env_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the caller's shell says, get_lab() here is local unless a test says otherwise;
    and the process's shared lab is restored after each test."""
    monkeypatch.delenv(LAB_ENV, raising=False)
    monkeypatch.setattr(helpers.lab, "_shared", None)


def test_cli_describes_what_students_type(teacher: dict[str, Any]) -> None:
    share = teacher["share"]
    port = share["port"]
    assert port > 0 and share["urls"] == [f"http://{TEACHER}:{port}/"]
    assert share["join"] == [
        f"http://{TEACHER}:{port}/#" + share["fingerprint"].replace(":", "")[:16]
    ]
    assert share["client_key"] is False
    # The join endpoint: a page for people, the CA for curl, the description for join().
    base = share["urls"][0]
    with urllib.request.urlopen(base, timeout=5) as page:  # noqa: S310 - loopback
        text = page.read().decode()
    assert share["fingerprint"] in text and "helpers.lab.join(" in text
    assert share["join"][0] not in text  # the page cannot vouch for itself: no '#fingerprint'
    with urllib.request.urlopen(base + "ca.pem", timeout=5) as ca:  # noqa: S310
        assert ca_fingerprint(ca.read()) == share["fingerprint"]
    with urllib.request.urlopen(base + "lab.json", timeout=5) as desc:  # noqa: S310
        data = json.load(desc)
    assert data["address"] == TEACHER and data["client_key_pem"] is None
    assert "PRIVATE KEY" not in json.dumps(data)  # public material only


def test_join_uses_the_teachers_servers(teacher: dict[str, Any]) -> None:
    url = teacher["share"]["join"][0]  # carries the fingerprint after '#'
    remote = join(url)
    try:
        assert running_lab() is remote and helpers.lab.get_lab() is remote
        valid = remote.host("valid")
        assert names.lookup(valid) == TEACHER and remote.address("valid")[0] == TEACHER
        assert remote.port("valid") == teacher["scenarios"]["valid"]["port"]
        # The student's own machine does not serve it: this is the teacher's server.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", remote.port("valid")), timeout=2).close()
        assert (
            requests.get(remote.url("valid"), verify=remote.ca_bundle, timeout=5).status_code == 200
        )
        # ip-san ("the address you typed", 127.0.0.1) is forwarded from this machine's loopback.
        assert remote.address("ip-san")[0] == "127.0.0.1"
        assert requests.get(remote.url("ip-san"), verify=remote.ca_bundle, timeout=5).ok
        assert diagnose.check(remote.url("ip-san")).ok  # loopback + a lab port: the lab CA
        # diagnose trusts the joined lab's CA for lab names, as with a local lab.
        expired = diagnose.check(remote.url("expired"))
        assert not expired.ok and expired.verify_code == 10
        assert diagnose.check("expired").verify_code == 10  # a scenario name: get_lab() = remote
        assert diagnose.check("valid").ok
        assert remote.fingerprint == teacher["share"]["fingerprint"]
        assert short_fingerprint(remote.fingerprint) in remote._repr_html_()
        assert remote.ca_bundle.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    finally:
        remote.stop()
    assert TEACHER not in names.lookup_all(valid)
    assert running_lab() is None


def test_what_is_not_shared(teacher: dict[str, Any]) -> None:
    with RemoteLab(teacher["share"]["urls"][0]) as remote:
        with pytest.raises(LabError, match="does not share its client key"):
            _ = remote.client_cert
        # Certificates are public: the chains each server sends are there; keys are not.
        leaf = pki.load_certificate(remote.files.chains["valid"])
        assert leaf.subject.rfc4514_string() == "CN=valid.lab.localhost"
        with pytest.raises(LabError, match="private key stays on the teacher's machine"):
            _ = remote.files.keys["valid"]
        held = list(remote.files.directory.iterdir())
        assert held and not any(b"PRIVATE KEY" in path.read_bytes() for path in held)
        # Without a certificate the mTLS server refuses us (TLS 1.3: on the first read).
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(remote.url("client-cert-required"), verify=remote.ca_bundle, timeout=5)


def test_fingerprint_is_checked(teacher: dict[str, Any]) -> None:
    url, full = teacher["share"]["urls"][0], teacher["share"]["fingerprint"]
    before = names.table()
    with pytest.raises(LabError, match="fingerprint") as err:
        RemoteLab(url, "0123 4567 89AB CDEF").start()
    assert "someone in the room" in str(err.value)
    assert names.table() == before  # nothing was mapped
    with pytest.raises(UsageError, match="too short"):
        RemoteLab(url, "0123")
    with pytest.raises(UsageError, match="different fingerprints"):
        RemoteLab(url + "#0123456789ABCDEF", full)
    with RemoteLab(url, full.lower()) as remote:  # the full form, any case, with colons
        assert remote.running


def test_teacher_down_and_wrong_urls(teacher: dict[str, Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    with pytest.raises(ConnectionProblem, match=r"^Nothing answers at http://127\.0\.0\.1:\d+/:"):
        join(f"http://127.0.0.1:{closed}/")
    assert running_lab() is None
    port = teacher["share"]["port"]
    with pytest.raises(LabError, match="answered HTTP 404"):
        RemoteLab(f"{TEACHER}:{port}/elsewhere/").start()
    with pytest.raises(UsageError, match="not an http:// URL"):
        RemoteLab(f"https://{TEACHER}:{port}/")


def test_get_lab_joins_from_the_environment(teacher: dict[str, Any], repo_root: Path) -> None:
    """A kernel started with TLS_COURSE_LAB set uses the teacher's lab, with no code change."""
    code = (
        "import json, requests\n"
        "from helpers import netguard; netguard.install()\n"
        "from helpers.lab import get_lab, running_lab\n"
        "lab = get_lab()\n"
        "r = requests.get(lab.url('valid'), verify=lab.ca_bundle, timeout=5)\n"
        "print(json.dumps([type(lab).__name__, r.status_code, running_lab() is lab,"
        " lab.address('valid')[0]]))\n"
    )
    env = dict(os.environ, **{LAB_ENV: teacher["share"]["join"][0]})
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == ["RemoteLab", 200, True, TEACHER]


def test_shared_client_key_opens_mtls(tmp_path: Path) -> None:
    """--share-client-key: the key arrives, is written 0600 and opens the mTLS scenario."""
    with (
        Lab(bind="127.0.0.3") as lab,
        ShareServer(lab, port=0, share_client_key=True) as share,
        RemoteLab(share.url("127.0.0.3"), directory=tmp_path / "student") as remote,
    ):
        chain, key = remote.client_cert
        assert key.stat().st_mode & 0o777 == 0o600
        assert chain.read_bytes() == lab.client_cert[0].read_bytes()
        r = requests.get(
            remote.url("client-cert-required"),
            verify=remote.ca_bundle,
            cert=remote.client_cert,
            timeout=5,
        )
        assert r.status_code == 200 and "TLS Course Student" in r.text
        from helpers.lab.__main__ import _share_table

        table = _share_table(lab, share, ["127.0.0.3"])
        assert f"helpers.lab.join('{share.join_url('127.0.0.3')}')" in table
        assert "client key IS shared" in table and "Firewall" in table


def test_ports_from_gives_a_fixed_range(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no room"):
        Lab(ports_from=65530)
    for base in (23170, 31470, 41470, 51470):
        try:
            lab = Lab(tmp_path, ports_from=base).start()
        except LabError:
            continue  # a port in that range is taken on this machine: try the next range
        with lab:
            assert [lab.port(n) for n in lab.scenarios] == list(
                range(base, base + len(lab.scenarios))
            )
            assert requests.get(lab.url("valid"), verify=lab.ca_bundle, timeout=5).ok
        return
    pytest.skip("no free range of ports found")


def test_cli_reports_a_busy_share_port(repo_root: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "helpers.lab", "--bind", "127.0.0.1", "--share",
             "--share-port", str(port), "--dir", str(tmp_path)],
            cwd=repo_root, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith("error: The join endpoint could not listen on 127.0.0.1:")
    assert "--share-port" in out.stderr
