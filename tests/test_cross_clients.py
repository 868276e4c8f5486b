"""The project's decoders hold on handshakes from TLS stacks it did not write.

Three independent clients connect to the lab's ``valid`` and ``expired`` scenarios over
loopback, in TLS 1.2 and TLS 1.3, each writing its own key log into a tmp dir:

* ``curl`` (OpenSSL underneath, ``SSLKEYLOGFILE``), ``--tls-max 1.2`` / ``--tlsv1.3``;
* ``gnutls-cli`` (GnuTLS, a different stack: ``SSLKEYLOGFILE``), versions by ``--priority``;
* headless Chromium (BoringSSL, ``--ssl-key-log-file``) with the lab root trusted through
  an NSS database (``tests/chromium.py``); TLS 1.2 through the lab's ``tls-1.2-only``.

``tcpdump`` records each run on ``lo`` (only the lab's ports). Then the same pcap is read
twice: by Wireshark's dissector (``tshark``, decrypting with the key log) and by the
project (``helpers.handshake`` for the records and hellos, ``helpers.tls13`` to decrypt
TLS 1.3 from the key log). Compared, per connection: the ClientHello's cipher suites,
extension order, supported groups, key-share groups and sizes, signature schemes, ALPN
and SNI; each direction's record content types, handshake message types and alerts
(level, description). For ``expired`` in TLS 1.3 that includes the client's alert, which
it sends encrypted under the handshake secret after the server's Finished: the project
must decrypt an abandoned handshake as far as the key log allows (issue 12, item 1).
Groups and signature schemes are compared by name, tshark's numbers mapped through the
project's registry: the test checks the parsing (order, count, values); the names
themselves are checked against IANA elsewhere.

TLS 1.2 decryption is not something the project does (``helpers.tls13`` is 1.3 only), so
in TLS 1.2 the comparison covers the plaintext handshake and the records; tshark's
decryption of the two Finished messages shows the key log was right.

A capture that lost packets is reported as inconclusive (skipped, with tcpdump's or
tshark's count), never blamed on a decoder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import tls13
from helpers.handshake import (
    ClientHello,
    ServerHello,
    decode_message,
    parse_handshake_messages,
    parse_records,
)
from helpers.handshake.registry import group_name, signature_scheme_name
from helpers.lab import Lab
from helpers.lab.scenarios import SCENARIOS

from . import chromium, reporting, thirdparty

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not (shutil.which("tshark") and shutil.which("tcpdump")),
        reason="needs tshark and tcpdump",
    ),
]

LAB_SCENARIOS = ("valid", "expired", "tls-1.2-only")
#: Issue 14's scenarios (notebook 09): curl's and openssl s_client's verdicts must be the
#: ones the lab states (Scenario.verdict), and both decoders must read the same wire.
ISSUE14 = (
    "strict-no-aki",
    "strict-bc-noncritical",
    "strict-ca-no-keyusage",
    "rsa-kx-only",
    "legacy-renegotiation",
    "truncation",
)
HANDSHAKE, CCS, ALERT = 22, 20, 21
FINISHED = 20


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """The three scenarios this module needs, in this process, stopped at the end."""
    with Lab(scenarios={n: SCENARIOS[n] for n in LAB_SCENARIOS + ISSUE14}) as running:
        yield running


@dataclass
class Run:
    client: str
    scenario: str
    version: str  # "1.2" or "1.3", what the client was told to use
    capture: thirdparty.Capture
    keylog: Path
    output: str  # what the client said (for failure messages)


def _captured(
    lab: Lab, scenarios: list[str], work: Path, drive
) -> tuple[thirdparty.Capture, Path, str]:  # noqa: ANN001
    """Run ``drive(keylog)`` while tcpdump records the scenarios' ports; read the pcap."""
    work.mkdir(parents=True, exist_ok=True)
    pcap, keylog = work / "capture.pcap", work / "keys.log"
    ports = [lab.port(s) for s in scenarios]
    sniffer = thirdparty.Sniffer(ports, pcap)
    try:
        output = drive(keylog)
        time.sleep(0.3)  # the last FIN/ACKs
    finally:
        sniffer.stop()
    # No assertion on the key log's size here: a TLS 1.2 client that rejects the
    # certificate stops before the key exchange, so it has no secret to log.
    keylog.touch()
    return thirdparty.read(pcap, keylog, set(ports), sniffer.dropped), keylog, output


def _run_tool(argv: list[str], keylog: Path, stdin: bytes = b"", tail: int = 2000) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSLKEYLOGFILE": str(keylog)}
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        out, _ = process.communicate(stdin, timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()  # our own child, by its PID
        out, _ = process.communicate()
    return f"exit {process.returncode}: {out.decode(errors='replace')[-tail:]}"


def _curl(lab: Lab, scenario: str, version: str, keylog: Path) -> str:
    host, port = lab.host(scenario), lab.port(scenario)
    force = ["--tlsv1.2", "--tls-max", "1.2"] if version == "1.2" else ["--tlsv1.3"]
    return _run_tool(
        [
            "curl", "-sS", "-o", "/dev/null", "--max-time", "10", *force,
            "--cacert", str(lab.ca_bundle), "--resolve", f"{host}:{port}:127.0.0.1",
            f"https://{host}:{port}/",
        ],
        keylog,
    )  # fmt: skip


def _gnutls(lab: Lab, scenario: str, version: str, keylog: Path) -> str:
    host, port = lab.host(scenario), lab.port(scenario)
    priority = (
        "NORMAL:-VERS-ALL:+VERS-TLS1.2" if version == "1.2" else "NORMAL:-VERS-ALL:+VERS-TLS1.3"
    )
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    return _run_tool(
        [
            "gnutls-cli", "--x509cafile", str(lab.ca_bundle), "--priority", priority,
            "--sni-hostname", host, "--verify-hostname", host, "-p", str(port), "127.0.0.1",
        ],
        keylog,
        request,
    )  # fmt: skip


CASES = [(s, v) for s in ("valid", "expired") for v in ("1.2", "1.3")]
TOOLS = {"curl": _curl, "gnutls-cli": _gnutls}


@pytest.fixture(scope="module")
def tool_runs(lab: Lab, tmp_path_factory) -> dict[tuple[str, str, str], Run]:
    runs = {}
    for client, drive in TOOLS.items():
        if shutil.which(client) is None:
            continue
        for scenario, version in CASES:
            work = tmp_path_factory.mktemp(f"{client}-{scenario}-{version}")
            capture, keylog, output = _captured(
                lab, [scenario], work, lambda k, d=drive, s=scenario, v=version: d(lab, s, v, k)
            )
            runs[client, scenario, version] = Run(
                client, scenario, version, capture, keylog, output
            )
    return runs


@pytest.fixture(scope="module")
def chromium_run(lab: Lab, tmp_path_factory) -> Run:
    missing = chromium.missing_tools()
    if missing:
        pytest.fail(
            "This test needs Chromium and certutil: apt-get install -y " + " ".join(missing)
        )
    work = tmp_path_factory.mktemp("chromium")
    home = chromium.trusting_home(work / "home", lab.ca_bundle)
    urls = {s: lab.url(s) for s in LAB_SCENARIOS}

    def drive(keylog: Path) -> str:
        version, visits = chromium.visit_all(
            urls, home, (f"--ssl-key-log-file={keylog}",), timeout_ms=15_000
        )
        return f"Chromium {version}: " + ", ".join(
            f"{s} {v.error or v.status}" for s, v in visits.items()
        )

    capture, keylog, output = _captured(lab, list(LAB_SCENARIOS), work, drive)
    return Run("chromium", "+".join(LAB_SCENARIOS), "both", capture, keylog, output)


# --- the project's reading of one connection ------------------------------------------


@dataclass
class Ours:
    client_hello: ClientHello
    server_hello: ServerHello | None
    tls13: bool
    content_types: dict[str, list[int]]  # TLS 1.2: every record; 1.3: filled by decrypt
    handshake_types: dict[str, list[int]]  # TLS 1.2: the plaintext handshake only


def _ours(conn: thirdparty.Connection) -> Ours:
    content: dict[str, list[int]] = {}
    handshake: dict[str, list[int]] = {}
    decoded: dict[str, list] = {}
    for direction, data in (("c2s", conn.c2s), ("s2c", conn.s2c)):
        records = parse_records(bytes(data), allow_partial=True)
        content[direction] = [r.content_type for r in records]
        plain = bytearray()
        for record in records:
            if record.content_type != HANDSHAKE:
                break  # after ChangeCipherSpec (or in 1.3, after ServerHello) it is encrypted
            plain += record.payload
        messages = parse_handshake_messages(bytes(plain), allow_partial=True)
        handshake[direction] = [m.msg_type for m in messages]
        decoded[direction] = messages
    client_hello = decode_message(decoded["c2s"][0])
    server_hello = decode_message(decoded["s2c"][0]) if decoded["s2c"] else None
    is13 = server_hello is not None and server_hello.version == "TLSv1.3"
    if is13:  # only the ServerHello is plaintext; the records are compared after decryption
        handshake["s2c"] = handshake["s2c"][:1]
        handshake["c2s"] = handshake["c2s"][:1]
    return Ours(client_hello, server_hello, is13, content, handshake)


def _hello_mismatches(ours: ClientHello, theirs: thirdparty.Hello) -> list[str]:
    """Every ClientHello field where helpers.handshake and tshark disagree."""
    signature = list(ours.signature_algorithms) + list(ours._value(50) or [])
    pairs = {
        "cipher suites": (ours.cipher_suites, theirs.cipher_suites),
        "extension order": ([e.type for e in ours.extensions], theirs.extensions),
        "supported groups": (
            ours.supported_groups,
            [group_name(g) for g in theirs.supported_groups],
        ),
        "key shares (group, bytes)": (
            [(k.group, k.key_length) for k in ours.key_shares],
            list(zip(theirs.key_share_groups, theirs.key_share_lengths, strict=False)),
        ),
        "signature schemes": (
            signature,
            [signature_scheme_name(s) for s in theirs.signature_schemes],
        ),
        "ALPN": (ours.alpn, theirs.alpn),
        "SNI": (ours.server_name, theirs.sni),
    }
    return [f"{name}: ours {a!r} != tshark {b!r}" for name, (a, b) in pairs.items() if a != b]


def _check_connection(run: Run, conn: thirdparty.Connection) -> list[str]:
    """Compare one connection; return what could only be partly checked (for the report)."""
    where = f"{run.client} {run.scenario} TLS {run.version} (tcp.stream {conn.stream}; {run.output[:300]})"
    assert conn.hello is not None
    ours = _ours(conn)
    assert not _hello_mismatches(ours.client_hello, conn.hello), (
        where,
        _hello_mismatches(ours.client_hello, conn.hello),
    )
    notes = []
    if ours.server_hello is None:
        return [f"{where}: no ServerHello"]
    if not ours.tls13:
        for d in ("c2s", "s2c"):
            assert ours.content_types[d] == conn.content_types[d], (where, d)
            # TLS 1.2 alerts before ChangeCipherSpec travel in the clear.
            plain_alerts = [
                tuple(r.payload[:2])
                for r in parse_records(bytes(getattr(conn, d)), allow_partial=True)
                if r.content_type == ALERT
            ]
            if CCS not in ours.content_types[d]:
                assert plain_alerts == conn.alerts[d], (where, d)
            theirs = conn.handshake_types[d]
            assert theirs[: len(ours.handshake_types[d])] == ours.handshake_types[d], (
                where,
                d,
                theirs,
            )
            # What tshark decrypted beyond the plaintext: the Finished (TLS 1.2 encrypts only it).
            assert set(theirs[len(ours.handshake_types[d]) :]) <= {FINISHED}, (where, d, theirs)
        return notes
    # An abandoned handshake too (expired): everything the key log opens, the client's
    # alert included (issue 12 item 1).
    result = tls13.decrypt(bytes(conn.c2s), bytes(conn.s2c), run.keylog.read_text())
    for d in ("c2s", "s2c"):
        records = [r for r in result.records if r.direction == d]
        assert [r.inner_type for r in records] == conn.content_types[d], (where, d)
        assert [m.msg_type for r in records for m in r.messages] == conn.handshake_types[d], (
            where,
            d,
        )
        alerts = [tuple(r.content[:2]) for r in records if r.inner_type == ALERT]
        assert alerts == conn.alerts[d], (where, d)
    return notes


def _summary(run: Run, notes: list[str]) -> list[str]:
    lines = []
    for conn in run.capture.connections:
        ours = _ours(conn)
        hello = ours.client_hello
        version = ours.server_hello.version if ours.server_hello else "no ServerHello"
        lines.append(
            f"  {run.client} port {conn.server_port} {version}: {len(hello.cipher_suites)} suites, "
            f"{len(hello.extensions)} extensions, key shares "
            f"{[(k.group_name, k.key_length) for k in hello.key_shares]}, "
            f"handshake c2s {conn.handshake_types['c2s']} s2c {conn.handshake_types['s2c']}, "
            f"client alerts {conn.alerts['c2s']} (tshark = ours)"
        )
    return lines + [f"  NOTE {n}" for n in notes]


def _check_run(run: Run, expect_connections: int = 1) -> list[str]:
    if run.capture.inconclusive:
        pytest.skip(
            f"inconclusive capture ({run.client} {run.scenario}): {run.capture.inconclusive}"
        )
    assert len(run.capture.connections) >= expect_connections, run.output
    notes = []
    for conn in run.capture.connections:
        notes += _check_connection(run, conn)
    return notes


@pytest.mark.parametrize(("scenario", "version"), CASES)
@pytest.mark.parametrize("client", list(TOOLS))
def test_command_line_client(client, scenario, version, tool_runs, record_property, pytestconfig):
    if shutil.which(client) is None:
        pytest.fail(
            f"{client} is not installed: apt-get install -y "
            + ("gnutls-bin" if client == "gnutls-cli" else client)
        )
    run = tool_runs[client, scenario, version]
    notes = _check_run(run)
    record_property("notes", notes)
    reporting.report(pytestconfig, _summary(run, notes))
    servers = [_ours(c).server_hello for c in run.capture.connections]
    assert {s.version for s in servers if s} == {f"TLSv{version}"}, run.output
    assert not notes, notes
    # The client's own verdict: the page for valid, a refusal for expired.
    if scenario == "valid":
        assert run.output.startswith("exit 0") and (client == "curl" or " 200 OK" in run.output)
    else:
        assert not run.output.startswith("exit 0"), run.output
    for conn in run.capture.connections:
        if (
            scenario == "expired"
            and client == "curl"
            and thirdparty.curl_verifies_after_handshake()
        ):
            # curl 8.17+ finishes the handshake, then checks the certificate and just closes
            assert not any(level == 2 for level, _ in conn.alerts["c2s"]), conn.alerts
            assert "verify result: certificate has expired" in run.output, run.output
        elif scenario == "expired":  # the client says why it gave up, and both decoders read it
            assert conn.alerts["c2s"] and conn.alerts["c2s"][-1][0] == 2, (conn.alerts, run.output)
        else:
            assert not conn.alerts["c2s"] or conn.alerts["c2s"] == [(1, 0)], conn.alerts


@pytest.mark.browser
def test_chromium(lab, chromium_run, record_property, pytestconfig):
    notes = _check_run(chromium_run, expect_connections=len(LAB_SCENARIOS))
    record_property("notes", notes)
    reporting.report(pytestconfig, [chromium_run.output, *_summary(chromium_run, notes)])
    expected = {
        lab.port("valid"): "TLSv1.3",
        lab.port("expired"): "TLSv1.3",
        lab.port("tls-1.2-only"): "TLSv1.2",
    }
    for conn in chromium_run.capture.connections:
        server_hello = _ours(conn).server_hello
        if server_hello is None:
            continue  # a connection Chromium opened and dropped: nothing negotiated
        assert server_hello.version == expected[conn.server_port], (conn.server_port, expected)
        if conn.server_port == lab.port("expired"):  # Chromium says it gives up, both read it
            assert conn.alerts["c2s"] and conn.alerts["c2s"][-1][0] == 2, conn.alerts
    negotiated = {c.server_port for c in chromium_run.capture.connections if _ours(c).server_hello}
    assert negotiated == set(expected), (negotiated, chromium_run.output)


# --- issue 14: the verdicts curl and openssl s_client reach, and what is on the wire -----


def _curl_default(lab: Lab, scenario: str, keylog: Path) -> str:
    """curl as a user runs it: its own defaults, the lab root trusted, nothing forced."""
    host, port = lab.host(scenario), lab.port(scenario)
    return _run_tool(
        [
            "curl", "-sS", "-o", "/dev/null", "--max-time", "10",
            "--cacert", str(lab.ca_bundle), "--resolve", f"{host}:{port}:127.0.0.1",
            f"https://{host}:{port}/",
        ],
        keylog,
    )  # fmt: skip


def _s_client(lab: Lab, scenario: str, keylog: Path) -> str:
    """openssl s_client -verify_return_error, the system OpenSSL, no strict flag."""
    host, port = lab.host(scenario), lab.port(scenario)
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    return _run_tool(
        [
            "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host,
            "-verify_return_error", "-verify_hostname", host, "-CAfile", str(lab.ca_bundle),
            "-keylogfile", str(keylog), "-ign_eof",
        ],
        keylog,
        request,
        tail=200_000,  # all of it: the page, the session, the error, in whatever order
    )  # fmt: skip


ISSUE14_TOOLS = {"curl": _curl_default, "openssl": _s_client}


@pytest.fixture(scope="module")
def issue14_runs(lab: Lab, tmp_path_factory) -> dict[tuple[str, str], Run]:
    runs = {}
    for tool, drive in ISSUE14_TOOLS.items():
        if shutil.which(tool) is None:
            continue
        for scenario in ISSUE14:
            work = tmp_path_factory.mktemp(f"{tool}-{scenario}")
            capture, keylog, output = _captured(
                lab, [scenario], work, lambda k, d=drive, s=scenario: d(lab, s, k)
            )
            runs[tool, scenario] = Run(tool, scenario, "default", capture, keylog, output)
    return runs


@pytest.mark.parametrize("scenario", ISSUE14)
@pytest.mark.parametrize("tool", list(ISSUE14_TOOLS))
def test_issue14_scenario_verdicts_and_wire(tool, scenario, issue14_runs, pytestconfig):
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: apt-get install -y {tool}")
    run = issue14_runs[tool, scenario]
    notes = _check_run(run)  # tshark and helpers.handshake/tls13 read the same bytes
    reporting.report(pytestconfig, [f"  {tool} {scenario}: {run.output[:120]!r}"])
    expect = SCENARIOS[scenario].verdict(tool)
    # The tool's own verdict is the one the lab states (and, for openssl, its JSON "cli").
    assert run.output.startswith("exit 0") is expect.ok, (expect.describe(), run.output)
    if not expect.ok:
        assert expect.error is not None and expect.error.lower() in run.output.lower(), run.output
    conn = run.capture.connections[0]
    server_hello = _ours(conn).server_hello
    if scenario == "rsa-kx-only":
        if expect.ok:  # RSA key transport: nothing ephemeral, no forward secrecy
            assert server_hello is not None and server_hello.version == "TLSv1.2"
            assert server_hello.cipher_suite_name.startswith("TLS_RSA_WITH_AES_"), server_hello
        else:  # no suite in common: the server's handshake_failure alert, read by both
            assert server_hello is None and conn.alerts["s2c"][-1] == (2, 40), conn.alerts
    elif scenario == "legacy-renegotiation":
        # RFC 5746 missing: a TLS 1.2 ServerHello with no extensions at all, then the
        # client gives up with a fatal alert that both decoders read.
        assert server_hello is not None and server_hello.version == "TLSv1.2"
        assert 0xFF01 not in [e.type for e in server_hello.extensions], server_hello.extensions
        assert conn.alerts["c2s"] and conn.alerts["c2s"][-1][0] == 2, (conn.alerts, run.output)
    elif scenario == "truncation":
        # The page came, then the server's FIN with no close_notify before it: the server
        # sent no alert at all (decrypted from the key log by both decoders).
        assert server_hello is not None and server_hello.version == "TLSv1.3"
        assert conn.alerts["s2c"] == [], conn.alerts
        assert "HTTP/1.1 200 OK" in run.output or tool == "curl", run.output
    else:  # strict-*: the tools do not set X509_V_FLAG_X509_STRICT and accept the chain
        assert expect.ok and server_hello is not None, run.output
    assert not notes, notes
