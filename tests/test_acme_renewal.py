"""helpers/acme/hotswap.py and helpers/acme/renewal.py: renewing under load, when to renew, what to alert on.

The swap tests are real: certificates A and B (B renews A) obtained from an AcmeServer on
loopback by the course's AcmeClient with HTTP-01, a HotSwapServer serving A, a client loop
opening new verified TLS connections from several threads, and B swapped in the middle. The
decision and monitor tests use certificates issued by helpers.pki with dates around a
fixed NOW, so they say the same thing on any day.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers.acme import ari
from helpers.acme.client import AcmeClient, Issued
from helpers.acme.hotswap import SERIAL_HEADER, HotSwapServer, SwapRefused
from helpers.acme.http01 import Http01Responder
from helpers.acme.renewal import (
    LoadLoop,
    decide,
    keep_fetching,
    missed_renewals,
)
from helpers.acme.server import AcmeServer
from helpers.errors import CourseError
from helpers.pki import CA
from tests.polling import wait_for

NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
NAME = "renew.lab.localhost"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A root, an online issuing CA behind an AcmeServer on loopback, and two certificates
    for one name obtained over ACME with HTTP-01: A, then its renewal B (``replaces`` A)."""
    directory = tmp_path_factory.mktemp("renewal")
    root = CA("Renewal Test Root CA", permitted=["lab.localhost", "127.0.0.0/8"])
    issuer = root.create_intermediate("Renewal Test ACME CA")
    bundle = directory / "root.pem"
    bundle.write_bytes(root.cert_pem)
    with (
        AcmeServer(issuer, issuer.chain) as server,
        Http01Responder(port=server.http01_port) as responder,
        AcmeClient(server.directory, ca_bundle=bundle) as client,
    ):
        first = client.obtain([NAME], responder=responder)
        window = client.renewal_info(first.cert)
        second = client.obtain([NAME], responder=responder, replaces=first.cert)
    a, b = _files(first, directory, "a"), _files(second, directory, "b")
    old = issuer.issue(NAME, not_before=-10 * DAY, not_after=-DAY).write(directory, "old")
    garbage = directory / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    return SimpleNamespace(
        issuer=issuer,
        a=a,
        b=b,
        old=old,
        bundle=bundle,
        garbage=garbage,
        dir=directory,
        window=window,
    )


def _files(issued: Issued, directory: Path, name: str) -> SimpleNamespace:
    chain, key = issued.write(directory, name)
    return SimpleNamespace(cert=issued.cert, chain=chain, key=key)


def _serial(files: SimpleNamespace) -> int:
    return files.cert.serial_number


def test_the_renewal_came_over_acme_and_replaces_the_first(certs: SimpleNamespace) -> None:
    a, b = certs.a.cert, certs.b.cert
    assert a.serial_number != b.serial_number and a.public_key() != b.public_key()
    assert b.issuer == a.issuer == certs.issuer.cert.subject
    # The CA's ARI answer for A is the policy window, and decide() follows it.
    assert certs.window == ari.suggested_window(a)
    decision = decide(a, certs.window, a.not_valid_before_utc, rng=random.Random(3))
    assert decision.source == "ARI" and certs.window.contains(decision.when)


# ----------------------------------------------------------------------- swap under load


def test_swap_under_load_drops_no_connection(certs: SimpleNamespace) -> None:
    a, b = _serial(certs.a), _serial(certs.b)
    with HotSwapServer(certs.a.chain, certs.a.key) as server:
        with LoadLoop(
            server.url, certs.bundle, seconds=2.5, workers=4, server_hostname=NAME
        ) as loop:
            assert wait_for(lambda: loop.progress >= 20, timeout=10), "the loop made no progress"
            server.swap(certs.b.chain, certs.b.key)
            loop.mark("swap")
        report = loop.report
        log = list(server.log)
    assert report is not None
    assert report.failed == [], report.failures
    assert report.serials == [a, b], report.summary()
    after = report.opened_after("swap")
    assert after, "no connection was opened after the swap"
    assert {s.serial for s in after} == {b}
    assert sum(s.serial == a for s in report.samples) >= 20
    # The server's side agrees: every connection was answered, none cut.
    assert log and all(line.split(": ", 1)[1].startswith("served serial") for line in log), log
    summary = report.summary()
    assert "0 failed" in summary and "then" in summary
    assert report.p50 is not None and report.p99 is not None and report.p50 <= report.p99
    assert "FAILED" not in report._repr_html_()


def test_each_answer_names_the_certificate_of_its_handshake(certs: SimpleNamespace) -> None:
    import socket
    import ssl

    from cryptography import x509

    with HotSwapServer(certs.a.chain, certs.a.key) as server:
        ctx = ssl.create_default_context(cafile=str(certs.bundle))
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    head = answer.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 200")
    serial = x509.load_der_x509_certificate(der).serial_number
    assert f"{SERIAL_HEADER}: {serial:x}" in head
    assert serial == _serial(certs.a)


def test_a_connection_accepted_before_the_swap_keeps_the_old_certificate(
    certs: SimpleNamespace,
) -> None:
    import socket
    import ssl

    from cryptography import x509

    a, b = _serial(certs.a), _serial(certs.b)
    ctx = ssl.create_default_context(cafile=str(certs.bundle))

    def handshake(raw: socket.socket) -> int:
        with ctx.wrap_socket(raw, server_hostname=NAME) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number

    with HotSwapServer(certs.a.chain, certs.a.key) as server:
        early = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert wait_for(lambda: server.accepted[a] == 1), "the server did not accept"
        server.swap(certs.b.chain, certs.b.key)  # before the early connection's handshake
        late = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert handshake(late) == b
        assert handshake(early) == a  # wrapped with A at accept: it keeps A
    assert server.accepted == {a: 1, b: 1}


@pytest.mark.parametrize(
    ("chain", "key", "words"),
    [
        ("a", "b", "does not belong"),  # A's chain with B's key
        ("garbage", "a", "certificate"),  # not PEM at all
        ("missing", "a", "cannot be read"),
        ("old", "old", "does not include now"),  # expired: a swap would break the site
    ],
)
def test_a_bad_swap_is_refused_and_the_old_certificate_keeps_serving(
    certs: SimpleNamespace, chain: str, key: str, words: str
) -> None:
    def path(which: str, part: str) -> Path:
        if which == "garbage":
            return certs.garbage
        if which == "missing":
            return certs.dir / "nowhere.pem"
        return Path(getattr(getattr(certs, which), part))

    a = _serial(certs.a)
    with HotSwapServer(certs.a.chain, certs.a.key) as server:
        with pytest.raises(SwapRefused) as caught:
            server.swap(path(chain, "chain"), path(key, "key"))
        assert isinstance(caught.value, CourseError)
        message = str(caught.value)
        assert words in message, message
        assert f"still serving serial {a:x}" in message
        assert "Traceback" not in message and "\n" not in message
        assert server.current.serial == a and len(server.history) == 1
        report = keep_fetching(
            server.url, certs.bundle, seconds=0.4, workers=2, server_hostname=NAME
        )
    assert report.failed == [] and report.serials == [a], report.summary()


def test_reloading_a_live_context_in_place_with_a_bad_key_takes_the_site_down(
    certs: SimpleNamespace,
) -> None:
    """Why HotSwapServer builds a new context: load_cert_chain on the live one sets the
    certificate, then fails on the key, and leaves a context with no usable key (the claim
    in helpers/acme/hotswap.py, measured on OpenSSL 3.0 and 3.5)."""
    import ssl

    with HotSwapServer(certs.a.chain, certs.a.key) as server:
        before = keep_fetching(
            server.url, certs.bundle, seconds=0.2, workers=1, server_hostname=NAME
        )
        with pytest.raises(ssl.SSLError):
            server.current.context.load_cert_chain(certs.b.chain, certs.a.key)  # in place
        after = keep_fetching(
            server.url, certs.bundle, seconds=0.3, workers=1, server_hostname=NAME
        )
    assert before.failed == [] and before.succeeded
    assert after.succeeded == [] and after.failed
    assert all(reason.startswith("TLS error") for reason in after.failures), after.failures


def test_a_bad_first_certificate_is_refused_before_listening(certs: SimpleNamespace) -> None:
    with pytest.raises(SwapRefused, match="does not belong"):
        HotSwapServer(certs.a.chain, certs.b.key)


def test_the_loop_counts_failures_with_their_reason(certs: SimpleNamespace) -> None:
    # A client that trusts another root: every handshake fails verification, and says so.
    other = CA("Some Other Root")
    bundle = certs.dir / "other-root.pem"
    bundle.write_bytes(other.cert_pem)
    with HotSwapServer(certs.a.chain, certs.a.key) as server:
        report = keep_fetching(server.url, bundle, seconds=0.3, workers=2, server_hostname=NAME)
    assert report.samples and report.succeeded == []
    (reason,) = report.failures
    assert reason.startswith("certificate verify failed"), reason
    assert "failed" in report.summary() and "FAILED" in report._repr_html_()


# ----------------------------------------------------------------------- when to renew


def _cert(issuer: CA, lifetime: dt.timedelta, age: dt.timedelta):
    """A certificate of ``lifetime`` issued ``age`` before NOW."""
    start = NOW - age
    return issuer.issue(NAME, not_before=start, not_after=start + lifetime).cert


def test_decide_picks_a_random_moment_in_a_future_ari_window(certs: SimpleNamespace) -> None:
    cert = _cert(certs.issuer, 90 * DAY, 10 * DAY)
    window = ari.suggested_window(cert)
    decision = decide(cert, window, NOW, rng=random.Random(7))
    assert decision.source == "ARI"
    assert window.start <= decision.when < window.end
    assert decision == decide(cert, window, NOW, rng=random.Random(7))  # repeatable
    picks = {decide(cert, window, NOW, rng=random.Random(i)).when for i in range(50)}
    assert len(picks) > 40 and all(window.start <= p < window.end for p in picks)
    assert "RFC 9773" in decision.why


def test_decide_in_an_open_window_never_schedules_the_past(certs: SimpleNamespace) -> None:
    cert = _cert(certs.issuer, 90 * DAY, 62 * DAY)
    window = ari.suggested_window(cert)  # day 60 to day 67.5: we are inside it
    whens = [decide(cert, window, NOW, rng=random.Random(i)).when for i in range(40)]
    assert all(NOW <= w < window.end for w in whens)
    assert NOW in whens  # some picks fell before now: renew at once (RFC 9773 §4.2)


def test_decide_after_the_ari_window_is_overdue(certs: SimpleNamespace) -> None:
    cert = _cert(certs.issuer, 90 * DAY, 75 * DAY)
    decision = decide(cert, ari.suggested_window(cert), NOW)
    assert decision.source == "overdue" and decision.when == NOW
    assert "ended" in decision.why


def test_decide_without_ari_renews_at_two_thirds(certs: SimpleNamespace) -> None:
    cert = _cert(certs.issuer, 90 * DAY, 10 * DAY)
    decision = decide(cert, None, NOW)
    assert decision.source == "two thirds"
    assert decision.when == ari.two_thirds(cert) == cert.not_valid_before_utc + 60 * DAY
    late = decide(cert, None, NOW + 55 * DAY)
    assert late.source == "overdue" and late.when == NOW + 55 * DAY
    expired = decide(cert, None, NOW + 81 * DAY)
    assert expired.source == "overdue" and "expired" in expired.why


def test_an_earlier_ari_window_wins_over_two_thirds(certs: SimpleNamespace) -> None:
    # The CA pulls the renewal forward (as before a mass revocation): ARI overrides 2/3.
    cert = _cert(certs.issuer, 90 * DAY, 10 * DAY)
    early = ari.RenewalWindow(NOW + DAY, NOW + 2 * DAY)
    decision = decide(cert, early, NOW, rng=random.Random(1))
    assert decision.source == "ARI" and decision.when < ari.two_thirds(cert)


# ----------------------------------------------------------------------- the monitor


def test_a_young_short_lived_certificate_is_no_alert(certs: SimpleNamespace) -> None:
    six_day = _cert(certs.issuer, 6 * DAY, 1 * DAY)
    assert missed_renewals([six_day], NOW) == []
    # Its lifetime is short, but nothing was missed: 1 day of 6 is before two thirds.
    assert missed_renewals([("six-day", six_day)], NOW) == []


def test_an_unrenewed_90_day_certificate_at_day_75_is_an_alert(certs: SimpleNamespace) -> None:
    cert = _cert(certs.issuer, 90 * DAY, 75 * DAY)
    (alert,) = missed_renewals({"shop": cert}, NOW)
    assert alert.label == "shop" and alert.cert is cert
    assert alert.level == "warn"  # notebook 03's vocabulary: under a third left
    assert alert.due == ari.two_thirds(cert) and alert.late == 15 * DAY
    assert "was not replaced" in str(alert)


def test_a_replaced_certificate_is_no_alert(certs: SimpleNamespace) -> None:
    old = _cert(certs.issuer, 90 * DAY, 75 * DAY)
    renewal = _cert(certs.issuer, 90 * DAY, 14 * DAY)  # issued at day 61 of the old one
    assert missed_renewals([("shop", old), ("shop", renewal)], NOW) == []
    # Grouped by names when unlabelled: the same two certificates, same answer.
    assert missed_renewals([renewal, old], NOW) == []


def test_missed_renewal_levels_and_order(certs: SimpleNamespace) -> None:
    nearly = _cert(certs.issuer, 90 * DAY, 85 * DAY)
    gone = _cert(certs.issuer, 90 * DAY, 91 * DAY)
    late = _cert(certs.issuer, 90 * DAY, 70 * DAY)
    alerts = missed_renewals({"late": late, "nearly": nearly, "gone": gone}, NOW)
    assert [(a.label, a.level) for a in alerts] == [
        ("gone", "expired"),
        ("nearly", "critical"),
        ("late", "warn"),
    ]
    assert "expired" in str(alerts[0])


def test_an_ari_window_moves_the_renewal_point(certs: SimpleNamespace) -> None:
    cert = _cert(certs.issuer, 90 * DAY, 62 * DAY)  # past two thirds (day 60)
    assert len(missed_renewals([cert], NOW)) == 1
    later = ari.RenewalWindow(NOW - DAY, NOW + DAY)  # the CA says: any time until tomorrow
    assert missed_renewals([cert], NOW, window_for=lambda c: later) == []
    earlier = ari.RenewalWindow(NOW - 10 * DAY, NOW - 5 * DAY)
    (alert,) = missed_renewals([cert], NOW, window_for=lambda c: earlier)
    assert alert.due == earlier.end


def test_renewals_in_the_same_second_count_the_one_listed_last(certs: SimpleNamespace) -> None:
    # X.509 times are whole seconds: a quick renewal can share its predecessor's notBefore.
    start = NOW - 5 * DAY
    first = certs.issuer.issue(NAME, not_before=start, not_after=start + 90 * DAY).cert
    short = certs.issuer.issue(NAME, not_before=start, not_after=start + 160 * HOUR).cert
    (alert,) = missed_renewals([(NAME, first), (NAME, short)], NOW)  # short is past 2/3
    assert alert.cert is short
    assert missed_renewals([(NAME, short), (NAME, first)], NOW) == []  # first is the newest
