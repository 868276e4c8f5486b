"""helpers.cards: what the certificate card shows is what the certificate says."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from helpers.cards import CertificateCard, ChainCard, Table, describe
from helpers.pki import CA, self_signed

UTC = dt.timezone.utc  # noqa: UP017 (3.10 compatible)
START = dt.datetime(2030, 1, 1, tzinfo=UTC)
END = START + dt.timedelta(days=100)

RED, AMBER, GREEN = "#cf222e", "#b35900", "#1a7f37"


@pytest.fixture(scope="module")
def root() -> CA:
    return CA()


@pytest.fixture(scope="module")
def inter(root: CA) -> CA:
    return root.create_intermediate()


@pytest.fixture(scope="module")
def leaf(inter: CA):
    return inter.issue(
        "www.lab.localhost", "127.0.0.1", "*.api.lab.localhost", not_before=START, not_after=END
    )


def fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def test_describe_reports_the_certificate(leaf, inter, root):
    now = START + dt.timedelta(days=40, hours=6)
    d = describe(leaf.cert, now=now)
    assert d["subject_cn"] == "www.lab.localhost"
    assert d["issuer_cn"] == "TLS Course Intermediate CA"
    assert d["sans"] == ["www.lab.localhost", "127.0.0.1", "*.api.lab.localhost"]
    assert d["san_entries"][1] == ("IP", "127.0.0.1")
    assert d["not_before"] == START and d["not_after"] == END
    assert d["days_left"] == (END - now).days == 59
    assert d["status"] == "in date"
    assert d["elapsed"] == pytest.approx(40.25 / 100)
    assert d["key_type"] == "EC" and d["key_size"] == 256 and d["key"] == "EC P-256"
    assert d["signature_algorithm"] == "ecdsa-with-SHA256"
    assert d["sha256_fingerprint"] == fingerprint(leaf.cert)
    assert d["serial"] == f"{leaf.cert.serial_number:x}"
    assert d["is_ca"] is False and d["self_signed"] is False
    assert d["key_usage"] == ["digitalSignature"]
    assert d["extended_key_usage"] == ["TLS server"]

    r = describe(root)  # a CA object is accepted too
    assert r["is_ca"] and r["self_signed"] and r["path_length"] is None
    i = describe(inter.cert)
    assert i["is_ca"] and not i["self_signed"] and i["path_length"] == 0
    assert "keyCertSign" in i["key_usage"] and "cRLSign" in i["key_usage"]


@pytest.mark.parametrize(
    ("now", "status", "colour"),
    [
        (START - dt.timedelta(days=2), "not yet valid", RED),
        (START + dt.timedelta(days=10), "in date", GREEN),
        (END - dt.timedelta(days=12), "expiring soon", AMBER),
        (END + dt.timedelta(days=3), "expired", RED),
    ],
)
def test_status_and_colour_follow_the_clock(leaf, now, status, colour):
    card = CertificateCard(leaf.cert, now=now)
    assert card.facts["status"] == status
    page = card._repr_html_()
    assert f"border-left:4px solid {colour}" in page
    assert status in page


def test_a_card_never_calls_a_certificate_valid(root):
    """The card checks dates only: an in-date self-signed certificate is not "valid"."""
    ss = self_signed("self.lab.localhost", not_before=START, not_after=END)
    card = CertificateCard(ss, now=START + dt.timedelta(days=1))
    assert card.facts["status"] == "in date"
    page = card._repr_html_()
    assert re.search(r">\s*in date\s*<", page)  # the badge
    assert not re.search(r">\s*valid\s*<", page)
    chain_page = ChainCard([ss], now=START + dt.timedelta(days=1))._repr_html_()
    assert re.search(r">\s*in date\s*<", chain_page)
    assert not re.search(r">\s*valid\s*<", chain_page)


def test_spki_pin_is_what_openssl_computes(tmp_path, leaf, root):
    """The pin row equals curl's --pinnedpubkey recipe run for real with openssl."""
    openssl = shutil.which("openssl") or "openssl"  # installed with the course (README)
    for i, cert in enumerate(
        (leaf.cert, root.cert, self_signed("rsa.lab.localhost", key_type="rsa").cert)
    ):
        pem = tmp_path / f"cert{i}.pem"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        spki = subprocess.run(
            [openssl, "x509", "-in", str(pem), "-noout", "-pubkey"],
            check=True,
            capture_output=True,
        ).stdout
        der = subprocess.run(
            [openssl, "pkey", "-pubin", "-outform", "der"],
            input=spki,
            check=True,
            capture_output=True,
        ).stdout
        digest = subprocess.run(
            [openssl, "dgst", "-sha256", "-binary"], input=der, check=True, capture_output=True
        ).stdout
        expected = "sha256//" + base64.b64encode(digest).decode()
        d = describe(cert)
        assert d["spki_pin"] == expected
        assert html.escape(expected) in CertificateCard(cert)._repr_html_()
        assert f"SPKI pin     {expected}" in str(CertificateCard(cert))
    # The pin follows the key, not the certificate: a renewal with the same key keeps it.
    again = root.issue("www.lab.localhost", key=leaf.key)
    assert describe(again)["spki_pin"] == describe(leaf)["spki_pin"]
    assert describe(again)["sha256_fingerprint"] != describe(leaf)["sha256_fingerprint"]


def test_card_html_shows_names_days_and_fingerprint(leaf):
    now = START + dt.timedelta(days=40)
    page = CertificateCard(leaf.cert, now=now)._repr_html_()
    for name in ("www.lab.localhost", "127.0.0.1", "*.api.lab.localhost"):
        assert html.escape(name) in page
    assert "60 days left" in page
    assert fingerprint(leaf.cert) in page
    assert "EC P-256" in page and "ecdsa-with-SHA256" in page
    assert "TLS Course Intermediate CA" in page
    # a progress bar 40% full
    assert "width:40.0%" in page
    assert "<script" not in page.lower() and "javascript:" not in page.lower()


def test_expired_and_future_texts(leaf):
    assert (
        "expired 3 days ago"
        in CertificateCard(leaf, now=END + dt.timedelta(days=3, hours=1))._repr_html_()
    )
    assert (
        "starts in 2 days" in CertificateCard(leaf, now=START - dt.timedelta(days=2))._repr_html_()
    )


def test_subject_text_is_escaped(root):
    evil = root.issue(
        "evil.lab.localhost", common_name="<script>alert('x')</script>&co", not_before=START
    )
    card = CertificateCard(evil.cert, now=START)
    page = card._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;co" in page
    chain_page = ChainCard([evil.cert, root.cert], now=START)._repr_html_()
    assert "<script>" not in chain_page and "&lt;script&gt;" in chain_page


def test_cn_only_certificate_warns(root):
    legacy = root.issue("legacy.lab.localhost", san=False)
    page = CertificateCard(legacy)._repr_html_()
    assert "no subjectAltName" in page
    assert describe(legacy)["sans"] == []


def test_leaf_and_ca_display_as_cards(leaf, root):
    assert fingerprint(leaf.cert) in leaf._repr_html_()
    assert fingerprint(root.cert) in root._repr_html_()
    assert "root CA" in root._repr_html_()


def test_self_signed_and_key_descriptions(root):
    ss = self_signed("self.lab.localhost", key_type="rsa")
    d = describe(ss)
    assert d["self_signed"] and not d["is_ca"] and d["key"] == "RSA 2048 bits"
    assert "self-signed leaf" in CertificateCard(ss)._repr_html_()
    p384 = root.issue("p384.lab.localhost", key_size=384)
    assert describe(p384)["key"] == "EC P-384"


def test_plain_text_summaries(leaf):
    now = START + dt.timedelta(days=1)
    card = CertificateCard(leaf, now=now)
    assert repr(card) == (
        "<CertificateCard 'www.lab.localhost' issued by 'TLS Course Intermediate CA', "
        f"{(END - now).days} days left>"
    )
    text = str(card)
    assert "DNS:www.lab.localhost" in text and "IP:127.0.0.1" in text
    assert fingerprint(leaf.cert) in text


def test_chain_card_runs_leaf_to_root(leaf, inter, root):
    card = ChainCard(leaf, now=START + dt.timedelta(days=1))  # a Leaf: its chain + root
    assert card.certs == [leaf.cert, inter.cert, root.cert]
    page = card._repr_html_()
    positions = [
        page.index(n)
        for n in ("www.lab.localhost", "TLS Course Intermediate CA", "TLS Course Root CA")
    ]
    assert positions == sorted(positions)
    assert page.count("issued by") == 2 and "not the next certificate" not in page
    assert "intermediate CA" in page and "root CA" in page
    assert "1: TLS Course Intermediate CA" in str(card)


def test_chain_card_flags_a_broken_link(leaf, root):
    page = ChainCard([leaf.cert, root.cert])._repr_html_()  # the intermediate is missing
    assert "not the next certificate" in page


def test_table_renders_escaped_rows():
    rows = [
        {"host": "a.lab.localhost", "ok": True, "code": 10},
        {"host": "<b>bold</b>", "ok": False, "note": None, "extra": "x & y"},
    ]
    table = Table(rows, title="Results <1>")
    assert table.columns == ["host", "ok", "code", "note", "extra"]
    assert len(table) == 2
    page = table._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    assert "x &amp; y" in page and "Results &lt;1&gt;" in page
    assert len(re.findall(r"<tr", page)) == 3  # header + 2 rows
    assert ">yes<" in page and ">no<" in page
    text = repr(table)
    assert text.splitlines()[0] == "Results <1>"
    assert "a.lab.localhost" in text


def test_table_columns_can_be_chosen():
    table = Table([{"a": 1, "b": 2, "c": 3}], columns=["c", "a"])
    page = table._repr_html_()
    assert page.index(">c<") < page.index(">a<") and ">b<" not in page
    assert repr(table).splitlines()[0].split() == ["c", "a"]


def test_naive_now_is_utc(leaf):
    naive = dt.datetime(2030, 1, 11)
    assert (
        describe(leaf, now=naive)["days_left"]
        == describe(leaf, now=naive.replace(tzinfo=UTC))["days_left"]
        == 90
    )


def test_card_rejects_non_certificates():
    with pytest.raises(TypeError):
        CertificateCard("not a certificate")
