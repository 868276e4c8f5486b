"""The saved post-quantum handshake (data/pq_handshake.json, made by tools/capture_pq.py).

Notebook 06 shows it to learners whose OpenSSL (3.0) cannot make a hybrid handshake. It
must parse with helpers.handshake, hold the sizes RFC/draft and FIPS 203 fix for
X25519MLKEM768 (client share 1184 + 32 = 1216 bytes, server share 1088 + 32 = 1120), and
hold no key material at all: it is committed to a public repository.
"""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path

import pytest

from helpers.capture import Capture

ROOT = Path(__file__).resolve().parent.parent
SAVED = ROOT / "data" / "pq_handshake.json"


@pytest.fixture(scope="module")
def saved() -> dict:
    return json.loads(SAVED.read_text(encoding="utf-8"))


def test_the_hybrid_handshake_parses_and_has_the_hybrid_share_sizes(saved: dict) -> None:
    assert saved["format"] == "tls-course-pq-capture/1"
    assert saved["recorded"]["openssl"].startswith("OpenSSL 3.") and not saved["recorded"][
        "openssl"
    ].startswith(("OpenSSL 3.0", "OpenSSL 3.1", "OpenSSL 3.2", "OpenSSL 3.3", "OpenSSL 3.4"))
    hybrid = Capture.from_dict(saved["captures"]["hybrid"])
    hello, server_hello = hybrid.client_hello, hybrid.server_hello
    assert hello is not None and server_hello is not None
    assert [(k.group_name, k.key_length) for k in hello.key_shares] == [
        ("X25519MLKEM768", 1216),
        ("x25519", 32),
    ]
    assert hello.supported_groups[:2] == ["X25519MLKEM768", "x25519"]
    assert server_hello.version == "TLSv1.3"
    assert server_hello.key_share is not None
    assert (server_hello.key_share.group_name, server_hello.key_share.key_length) == (
        "X25519MLKEM768",
        1120,
    )
    # The hybrid ClientHello no longer fits one 1460-byte TCP segment (Ethernet MSS).
    assert len(hybrid.records("c2s")[0].raw) > 1460
    assert hybrid.info["group"] == "X25519MLKEM768"


def test_the_x25519_only_handshake_is_the_smaller_baseline(saved: dict) -> None:
    hybrid = Capture.from_dict(saved["captures"]["hybrid"])
    classic = Capture.from_dict(saved["captures"]["x25519"])
    assert classic.client_hello is not None and classic.server_hello is not None
    assert [k.group_name for k in classic.client_hello.key_shares] == ["x25519"]
    assert classic.server_hello.key_share is not None
    assert classic.server_hello.key_share.group_name == "x25519"
    hello_growth = len(hybrid.records("c2s")[0].raw) - len(classic.records("c2s")[0].raw)
    assert 1000 < hello_growth < 1300, (
        hello_growth
    )  # one ML-KEM-768 encapsulation key, less padding
    server_hello_growth = len(hybrid.records("s2c")[0].raw) - len(classic.records("s2c")[0].raw)
    assert server_hello_growth == 1120 - 32  # the only difference: the bigger key share
    timing = saved["handshake_ms"]
    assert timing["runs"] >= 10 and timing["hybrid"] > 0 and timing["x25519"] > 0


def test_the_saved_capture_contains_no_key_material(saved: dict) -> None:
    text = SAVED.read_text(encoding="utf-8")
    for forbidden in ("PRIVATE KEY", "CLIENT_RANDOM", "TRAFFIC_SECRET", "EXPORTER_SECRET"):
        assert forbidden not in text.upper(), forbidden
    assert not re.search(r"-----BEGIN", text)
    for capture in saved["captures"].values():
        assert "keylog" not in capture["info"]
        assert set(capture["info"]) <= {
            "version",
            "cipher",
            "server_hostname",
            "group",
            "client_key_shares",
            "server_key_share",
        }
    assert SAVED.stat().st_size < 64 * 1024


def test_the_tool_records_on_openssl_3_5_and_refuses_before() -> None:
    """On OpenSSL >= 3.5 the tool really records (no file written); before, it says why not."""
    from tools import capture_pq

    if ssl.OPENSSL_VERSION_INFO < (3, 5):
        with pytest.raises(SystemExit, match="OpenSSL 3.5"):
            capture_pq.record(runs=1)
        return
    fresh = capture_pq.record(runs=2)
    capture_pq.check_no_secrets(json.dumps(fresh))
    hybrid = Capture.from_dict(fresh["captures"]["hybrid"])
    assert hybrid.server_hello is not None and hybrid.server_hello.key_share is not None
    assert hybrid.server_hello.key_share.key_length == 1120
    assert fresh["captures"]["x25519"]["info"]["group"] == "x25519"


def test_the_tool_refuses_to_write_key_material() -> None:
    from tools import capture_pq

    with pytest.raises(SystemExit, match="refusing"):
        capture_pq.check_no_secrets("CLIENT_RANDOM 00 11")
    with pytest.raises(SystemExit, match="refusing"):
        capture_pq.check_no_secrets("-----BEGIN PRIVATE KEY-----")
    capture_pq.check_no_secrets(json.dumps({"chunks": [{"data": "1603"}]}))
