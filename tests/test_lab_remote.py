"""A lab shared with a room (helpers.lab.remote): teacher CLI, join(), TLS_COURSE_LAB, on loopback.

The teacher's lab runs as the teacher runs it, ``python -m helpers.lab --share``, in its
own process bound to 127.0.0.2 (Linux routes all of 127.0.0.0/8 to ``lo``), and is
stopped by its PID. The "student" is this test process: it has none of the teacher's
files and only the names :class:`~helpers.lab.RemoteLab` maps, so every success below
went through the join endpoint. The offline guard is on throughout.
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization

import helpers.lab
from helpers import diagnose, names, pki
from helpers.errors import ConnectionProblem, LabError, UsageError
from helpers.lab import LAB_ENV, Lab, RemoteLab, ShareServer, join, running_lab
from helpers.lab.build import _description_signer, ensure
from helpers.lab.remote import ca_fingerprint, short_fingerprint
from helpers.lab.remote.joined import InsecureJoinWarning
from helpers.lab.remote.signing import DescriptionSigner

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
        ca_pem_text = ca.read().decode()
    assert ca_fingerprint(ca_pem_text.encode()) == share["fingerprint"]
    assert "join('" + base + "#XXXXXXXXXXXXXXXX')" in text  # the '#FP' form, as a placeholder
    with urllib.request.urlopen(base + "lab.json", timeout=5) as desc:  # noqa: S310
        envelope = json.load(desc)
    assert envelope["format"] == 2 and envelope["chain"][1] == ca_pem_text
    data = json.loads(envelope["description"])  # the exact bytes the lab signed
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
    with RemoteLab(teacher["share"]["join"][0]) as remote:
        with pytest.raises(LabError, match="does not share its client key"):
            _ = remote.client_cert
        # Certificates are public: the chains each server sends are there; keys are not.
        leaf = pki.load_certificate(remote.files.chains["valid"])
        assert leaf.subject.rfc4514_string() == "CN=valid.lab.localhost"
        with pytest.raises(LabError, match="private key stays on the teacher's machine"):
            _ = remote.files.keys["valid"]
        held = [p for p in remote.files.directory.iterdir() if p.name != ".in-use"]
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
        join(f"http://127.0.0.1:{closed}/#0123456789ABCDEF")
    assert running_lab() is None
    port = teacher["share"]["port"]
    with pytest.raises(LabError, match="answered HTTP 404"):
        RemoteLab(f"{TEACHER}:{port}/elsewhere/#0123456789ABCDEF").start()
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
        RemoteLab(share.join_url("127.0.0.3"), directory=tmp_path / "student") as remote,
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
        # With the client key shared, the endpoint answers only to an IP literal (DNS
        # rebinding); join() says so in one sentence.
        with ShareServer(lab, bind="127.0.0.1", port=0, share_client_key=True) as by_ip:
            fingerprint = by_ip.join_url("127.0.0.1").split("#")[1]
            with pytest.raises(LabError, match="answers only requests addressed to its IP"):
                RemoteLab(f"http://localhost:{by_ip.port}/#{fingerprint}").start()
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


# --------------------------------------------------------------------------- issue 13
# Joining is authenticated (M3, L1, L4, N2): someone in the room answers in the teacher's
# place. Fake endpoints listen on 127.0.0.4 (Linux routes 127.0.0.0/8 to lo); each serves
# fixed bytes over real HTTP.


class _Fake(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    body: bytes = b""
    drip: float = 0.0  # > 0: send the body one byte at a time, this many seconds apart


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    server: _Fake

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        if not self.server.drip:
            self.wfile.write(self.server.body)
            return
        for byte in self.server.body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(self.server.drip)


@pytest.fixture
def fake() -> Iterator[_Fake]:
    """A 'teacher' on 127.0.0.4 that answers whatever a test puts in ``fake.body``."""
    server = _Fake(("127.0.0.4", 0), _FakeHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _envelope(teacher: dict[str, Any]) -> dict[str, Any]:
    with urllib.request.urlopen(teacher["share"]["urls"][0] + "lab.json", timeout=5) as r:  # noqa: S310
        return json.load(r)


def _teacher_signer(teacher: dict[str, Any]) -> DescriptionSigner:
    """The teacher's own signer (as if its key had leaked): for the defence-in-depth tests."""
    generation = Path(teacher["ca_bundle"]).parent
    return DescriptionSigner.load(
        generation / "signer.pem", generation / "signer-key.pem", generation / "ca.pem"
    )


def _fake_url(fake: _Fake, teacher: dict[str, Any]) -> str:
    short = teacher["share"]["fingerprint"].replace(":", "")[:16]
    return f"http://127.0.0.4:{fake.server_address[1]}/#{short}"


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_join_without_a_fingerprint_is_refused(
    teacher: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """M3: no fingerprint, no join (one sentence saying where to find it); an opt-out is loud."""
    url = teacher["share"]["urls"][0]
    before = names.table()
    with pytest.raises(UsageError, match="no CA fingerprint") as err:
        join(url)
    assert "teacher's terminal or the board" in str(err.value) and "/#" in str(err.value)
    monkeypatch.setenv(LAB_ENV, url)
    with pytest.raises(UsageError, match=f"{LAB_ENV}=.* has no CA fingerprint"):
        helpers.lab.get_lab()
    assert names.table() == before and running_lab() is None
    monkeypatch.delenv(LAB_ENV)
    with pytest.warns(InsecureJoinWarning, match="WITHOUT a CA fingerprint"):
        remote = RemoteLab(url, insecure_no_fingerprint=True, directory=tmp_path).start()
    with remote:
        assert "UNVERIFIED" in repr(remote)
        assert "background:#b00020" in remote._repr_html_()
        assert "NOT checked" in remote._repr_html_()


def test_a_spoofed_endpoint_with_the_real_ca_is_refused(
    teacher: dict[str, Any], fake: _Fake, tmp_path: Path
) -> None:
    """L1: the real (public) CA plus forged CRL/chains/ports: refused, an earlier join untouched."""
    honest = RemoteLab(teacher["share"]["join"][0], directory=tmp_path).start()
    try:
        kept = _snapshot(honest.files.directory)
        real = _envelope(teacher)
        description = json.loads(real["description"])
        evil = pki.CA("Evil CA")
        forged = dict(
            description,
            crl_pem=evil.crl(days=1).public_bytes(serialization.Encoding.PEM).decode(),
        )
        forged["scenarios"]["ip-san"]["port"] = 18888
        forged_text = json.dumps(forged, indent=1)
        # The forged description is served in each way an impostor could try.
        evil_cert, evil_key = _description_signer(evil, datetime.datetime.now(datetime.UTC))
        resigned = DescriptionSigner(
            evil_cert, evil_key, pki.load_certificate(teacher["ca_bundle"])
        )
        attempts = {
            "changed after signing": (dict(real, description=forged_text), "does not match its signature"),
            "unsigned fields beside": (dict(real, crl_pem=forged["crl_pem"]), "outside its signature"),
            "signed by another key": (json.loads(resigned.envelope(forged_text.encode())), "did not issue"),
            "not signed": (dict(real, signature=""), "does not match its signature"),
        }  # fmt: skip
        for label, (envelope, refusal) in attempts.items():
            fake.body = json.dumps(envelope).encode()
            with pytest.raises(LabError, match=refusal):
                RemoteLab(_fake_url(fake, teacher), directory=tmp_path).start()
            assert _snapshot(honest.files.directory) == kept, label
        # A refused join wrote nothing: only the honest join's directory exists.
        assert [p for p in tmp_path.glob("*/*/*")] == [honest.files.directory]
        assert requests.get(honest.url("valid"), verify=honest.ca_bundle, timeout=5).ok
    finally:
        honest.stop()


def test_defence_in_depth_even_with_the_signer_key(
    teacher: dict[str, Any], fake: _Fake, tmp_path: Path
) -> None:
    """L1: were the signer key stolen, a forged CRL, chain or client key is still refused;
    an old signed description is refused as a replay."""
    signer = _teacher_signer(teacher)
    description = json.loads(_envelope(teacher)["description"])
    # The honest description, re-signed, still passes: the checks accept every lab chain
    # (sha1, incomplete-chain, bad-issuer) and skip the foreign ones by their recipe.
    fake.body = signer.envelope(json.dumps(description).encode())
    with RemoteLab(_fake_url(fake, teacher), directory=tmp_path) as remote:
        sent = Path(teacher["ca_bundle"]).parent / "sha1-chain.pem"  # what the server sends
        assert remote.files.chains["sha1"].read_bytes() == sent.read_bytes()
    evil = pki.CA("Evil CA")
    evil_client = evil.issue("student.lab.localhost", usages=("client",))
    pem = serialization.Encoding.PEM
    other_lab = ensure(tmp_path / "other")  # a second lab's files: same names, another CA
    forgeries = {
        "CRL": ({"crl_pem": evil.crl(days=1).public_bytes(pem).decode()}, "CRL .* not signed by the lab CA"),
        "chain": ({"chains_pem": dict(description["chains_pem"], valid=other_lab.chains["valid"].read_text())}, "'valid' .* does not lead to the lab CA"),
        "client": ({"client_cert_pem": evil_client.cert.public_bytes(pem).decode(), "client_key_pem": pki.private_key_pem(evil_client.key).decode()}, "client certificate .* not the lab's"),
    }  # fmt: skip
    for label, (change, refusal) in forgeries.items():
        fake.body = signer.envelope(json.dumps(dict(description, **change)).encode())
        with pytest.raises(LabError, match=refusal):
            RemoteLab(_fake_url(fake, teacher), directory=tmp_path / label).start()
        assert not (tmp_path / label).exists() or not list((tmp_path / label).glob("*/*/*"))
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    fake.body = signer.envelope(json.dumps(description).encode(), now=old)
    with pytest.raises(LabError, match="too far from this machine's clock"):
        RemoteLab(_fake_url(fake, teacher), directory=tmp_path).start()


def test_a_signer_must_be_fit_for_signing_descriptions(fake: _Fake, tmp_path: Path) -> None:
    """A server certificate of the pinned CA (serverAuth EKU) cannot sign a description."""
    ca = pki.CA("Some Root")
    leaf = ca.issue("valid.lab.localhost")  # directly issued by the root, but for TLS
    wrong = DescriptionSigner(leaf.cert, leaf.key, ca.cert)  # type: ignore[arg-type]
    fake.body = wrong.envelope(json.dumps({"kind": "tls-course-lab", "format": 2}).encode())
    url = f"http://127.0.0.4:{fake.server_address[1]}/#{ca_fingerprint(ca.cert)[:23]}"
    with pytest.raises(LabError, match="not issue for signing descriptions"):
        RemoteLab(url, directory=tmp_path).start()


def test_hostile_answers_end_in_one_sentence_within_the_deadline(
    teacher: dict[str, Any], fake: _Fake, tmp_path: Path
) -> None:
    """L4: deep JSON is a LabError, not a RecursionError; a trickle cannot outlast the deadline."""
    url = _fake_url(fake, teacher)
    fake.body = b'{"kind": "tls-course-lab", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(LabError, match="nested more than 16 levels deep"):
        RemoteLab(url, directory=tmp_path).start()
    # An unterminated string of escaped quotes (1 MB): a string-skipping regex would restart
    # at every quote (quadratic: hours); the scan is linear.
    fake.body = b'"' + b'\\"' * 500_000
    start = time.monotonic()
    with pytest.raises(LabError, match="not valid JSON"):
        RemoteLab(url, directory=tmp_path).start()
    assert time.monotonic() - start < 5
    fake.body, fake.drip = b" " * 100, 0.1  # 10 s of body at 10 bytes/s
    start = time.monotonic()
    with pytest.raises(ConnectionProblem, match="within 1.5 s"):
        RemoteLab(url, directory=tmp_path, timeout=1.5).start()
    assert time.monotonic() - start < 3.5


def test_each_join_has_its_own_directory_and_old_ones_are_pruned(
    teacher: dict[str, Any], tmp_path: Path
) -> None:
    """N2: a fresh directory per join, under fingerprint and endpoint; ip-san forwarded from
    a port this machine picks; directories no running kernel holds are pruned."""
    url = teacher["share"]["join"][0]
    # What an older course wrote straight into <fingerprint>/, a client key among it.
    legacy = tmp_path / "00112233aabbccdd" / "client-key.pem"
    legacy.parent.mkdir()
    legacy.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    first = RemoteLab(url, directory=tmp_path).start()
    assert not legacy.exists()
    second = RemoteLab(url, directory=tmp_path).start()
    try:
        one, two = first.files.directory, second.files.directory
        assert one != two and one.parent == two.parent
        fingerprint, endpoint = one.parent.parent.name, one.parent.name
        assert fingerprint == teacher["share"]["fingerprint"].replace(":", "")[:16].lower()
        assert endpoint == f"{TEACHER}_{teacher['share']['port']}"
        # ip-san: the teacher's port number is not taken on this machine's loopback.
        assert first.port("ip-san") != teacher["scenarios"]["ip-san"]["port"]
        assert requests.get(first.url("ip-san"), verify=first.ca_bundle, timeout=5).ok
    finally:
        first.stop()
    with RemoteLab(url, directory=tmp_path) as third:
        assert not one.exists()  # released by stop(): pruned
        assert two.exists() and third.files.directory.exists()  # still held: kept
    second.stop()
