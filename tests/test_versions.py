"""helpers.versions: every row of the "what changed" table agrees with real handshakes.

Each test compares a row's measured column with something independent of the way
the row was measured: a real TLS handshake in memory (client and server contexts,
:func:`helpers.capture.capture_memory`), the interpreter's version, or the context
itself.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import warnings

import pytest

from helpers import pki, versions
from helpers.capture import capture_memory
from helpers.errors import UsageError


@pytest.fixture(scope="module")
def ca():
    return pki.CA(common_name="Versions test CA")


def _server(ca, **settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue("localhost").configure_server(ctx)
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: this old server is deliberate
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, value in settings.items():
            setattr(ctx, name, value)
    return ctx


def _client(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> ssl.SSLObject:
    """A real handshake over MemoryBIOs; returns the client's SSLObject, handshake done."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    peer = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, obj in (("client", tls), ("server", peer)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return tls
    raise AssertionError("the in-memory handshake did not finish")


def test_the_table_measures_every_change_and_shows_this_machine():
    table = versions.table()
    assert [change.key for change, _ in table.rows] == [c.key for c in versions.CHANGES]
    assert all(seen.seen for _, seen in table.rows)
    html = table._repr_html_()
    assert ssl.OPENSSL_VERSION in html and f"Python {sys.version_info.major}." in html
    for change in versions.CHANGES:
        assert change.since in html and change.since in repr(table)


def test_client_hello_is_what_a_client_sends_in_a_real_handshake(ca):
    client = _client(ca)
    capture = capture_memory(client, _server(ca), server_hostname="localhost")
    real = capture.client_hello
    built = versions.client_hello(_client(ca), server_hostname="localhost")
    assert built.versions == real.versions
    assert [k.group_name for k in built.key_shares] == [k.group_name for k in real.key_shares]
    assert built.supported_groups == real.supported_groups
    assert built.extension_names == real.extension_names


def test_hybrid_row_matches_the_group_a_real_server_chooses(ca):
    capture = capture_memory(_client(ca), _server(ca), server_hostname="localhost")
    chosen = capture.server_hello.key_share
    applies = versions.table()["hybrid-pq"].applies
    assert applies == (ssl.OPENSSL_VERSION_INFO >= (3, 5))
    if applies:  # ML-KEM-768 ciphertext (1088 bytes) + X25519 share (32): RFC draft, FIPS 203
        assert (chosen.group_name, chosen.key_length) == ("X25519MLKEM768", 1120)
    else:
        assert (chosen.group_name, chosen.key_length) == ("x25519", 32)


def test_tls12_row_matches_a_real_refusal_of_a_tls10_server(ca):
    old = _server(ca, maximum_version=ssl.TLSVersion.TLSv1, minimum_version=ssl.TLSVersion.TLSv1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    assert versions.table()["tls12-minimum"].applies
    with pytest.raises(ssl.SSLError):
        capture_memory(_client(ca), old, server_hostname="localhost")


def test_negotiated_group_asks_ssl_when_it_can_and_the_server_hello_otherwise(ca):
    client, server = _client(ca), _server(ca)
    tls = _handshake(client, server)
    hello = capture_memory(_client(ca), _server(ca), server_hostname="localhost").server_hello
    group = versions.negotiated_group(tls, hello)
    assert group == hello.selected_group
    has_api = versions.table()["groups-api"].applies
    assert has_api == (sys.version_info >= (3, 15))
    if not has_api:
        assert versions.negotiated_group(tls) is None  # nothing to ask, nothing given


def test_api_rows_follow_the_interpreter():
    table = versions.table()
    assert table["wrap-socket-removed"].applies == (sys.version_info >= (3, 12))
    assert table["wrap-socket-removed"].applies == (not hasattr(ssl, "wrap_socket"))
    assert table["strict-verify"].applies == (sys.version_info >= (3, 13))


def test_urllib3_row_reports_the_flags_of_urllib3s_real_context():
    import urllib3
    from urllib3.util.ssl_ import create_urllib3_context

    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    has = bool(create_urllib3_context().verify_flags & strict)
    row = versions.table()["urllib3-strict"]
    assert row.applies == has and urllib3.__version__ in row.seen
    major, minor = (int(x) for x in urllib3.__version__.split(".")[:2])
    assert has == ((major, minor) >= (2, 4) and sys.version_info >= (3, 13))


def test_openssl_rows_follow_the_library():
    table = versions.table()
    assert table["legacy-renegotiation"].applies == (ssl.OPENSSL_VERSION_INFO >= (3, 0))
    flag = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
    assert table["legacy-renegotiation"].applies == (not ssl.create_default_context().options & flag)
    assert table["cert-compression"].applies == (ssl.OPENSSL_VERSION_INFO >= (3, 2))


def test_a_note_says_what_was_measured_here_and_names_the_change():
    note = versions.note("hybrid-pq")
    assert note.text.startswith(f"On your {versions.here()}: your ClientHello's key shares:")
    assert "Since OpenSSL 3.5" in note.text and "On your" in note._repr_html_()
    with pytest.raises(KeyError, match="known: tls12-minimum"):
        versions.note("nonsense")


def test_importing_measures_nothing():
    code = (
        "import helpers.versions as v, sys; "
        "print(v._default_client_hello.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_offer_only_really_restricts_the_clienthello_or_says_why_not(ca):
    ctx = _client(ca)
    try:
        versions.offer_only(ctx, "X25519")
    except UsageError as e:
        # only where this Python's own API really refuses X25519 (EC-only set_ecdh_curve)
        assert "cannot restrict" in str(e) and not hasattr(ssl.SSLContext, "set_groups")
        with pytest.raises(ssl.SSLError):
            ssl.create_default_context().set_ecdh_curve("X25519")
        return
    capture = capture_memory(ctx, _server(ca), server_hostname="localhost")
    shares = [k.group_name for k in capture.client_hello.key_shares]
    assert shares == ["x25519"]
    assert capture.client_hello.supported_groups == ["x25519"]
    assert capture.server_hello.key_share.group_name == "x25519"


def test_offer_only_refuses_an_unknown_group_in_one_sentence(ca):
    with pytest.raises(UsageError, match="cannot restrict a context to 'no-such-group'"):
        versions.offer_only(_client(ca), "no-such-group")
