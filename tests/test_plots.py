"""helpers.plots: assert what each figure *contains* (labels, bars, colours, lines), not pixels."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from types import SimpleNamespace

import matplotlib
import pytest
from matplotlib import colors as mcolors
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from helpers import plots
from helpers.errors import PlotDataError
from helpers.pki import CA

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _no_figures_left_open() -> Iterator[None]:
    """Plots must not leave figures registered with pyplot (no global state)."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before
    assert matplotlib.get_backend().lower() == "agg"


@pytest.fixture(scope="module")
def pki() -> SimpleNamespace:
    root = CA("Plots Root CA", not_before=NOW - 3000 * DAY, not_after=NOW + 3000 * DAY)
    inter = root.create_intermediate(
        "Plots Intermediate CA", not_before=NOW - 400 * DAY, not_after=NOW + 1000 * DAY
    )

    def leaf(name: str, start: int, end: int):  # days relative to NOW
        return inter.issue(name, not_before=NOW + start * DAY, not_after=NOW + end * DAY).cert

    return SimpleNamespace(
        root=root,
        inter=inter,
        valid=leaf("valid.test", -30, 60),
        expiring=leaf("expiring.test", -80, 10),
        expired=leaf("expired.test", -100, -3),
        future=leaf("future.test", 5, 95),
    )


def _bars(ax) -> list:
    return [p for p in ax.patches if str(p.get_gid() or "").startswith("status:")]


def _now_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == "now"]


def _same_colour(a, b) -> bool:
    return mcolors.to_hex(a) == mcolors.to_hex(b)


def _texts(ax) -> str:
    return "\n".join(t.get_text() for t in ax.texts)


# ----------------------------------------------------------------------------- status_of


def test_status_of_each_status(pki: SimpleNamespace) -> None:
    assert plots.status_of(pki.valid, NOW) == plots.VALID
    assert plots.status_of(pki.expiring, NOW) == plots.EXPIRING
    assert plots.status_of(pki.expired, NOW) == plots.EXPIRED
    assert plots.status_of(pki.future, NOW) == plots.NOT_YET_VALID
    assert plots.status_of(None, NOW) == plots.ERROR
    assert set(plots.STATUS_COLORS) == {
        plots.EXPIRED,
        plots.EXPIRING,
        plots.VALID,
        plots.NOT_YET_VALID,
        plots.ERROR,
    }
    assert len(set(plots.STATUS_COLORS.values())) == 5  # five distinct colours


def test_status_boundaries_are_inclusive(pki: SimpleNamespace) -> None:
    # RFC 5280 §4.1.2.5: valid *through* notAfter.
    end = pki.valid.not_valid_after_utc
    assert plots.status_of(pki.valid, end) == plots.EXPIRING
    assert plots.status_of(pki.valid, end + dt.timedelta(seconds=1)) == plots.EXPIRED
    assert plots.status_of(pki.valid, end - 30 * DAY) == plots.EXPIRING
    assert plots.status_of(pki.valid, end - 31 * DAY) == plots.VALID
    naive = NOW.replace(tzinfo=None)  # naive datetimes are UTC
    assert plots.status_of(pki.valid, naive) == plots.VALID


def test_in_date_is_not_called_valid_and_renewal_is_relative_to_the_lifetime() -> None:
    # "valid" next to "verified: no" contradicts itself: the dates are only one rule.
    assert plots.VALID == "in date" and "valid" not in plots.STATUS_LABELS[plots.VALID]
    root = CA("Short-lived Root", not_before=NOW - 10 * DAY, not_after=NOW + 400 * DAY)
    six_day = root.issue("six.test", not_before=NOW - DAY / 24, not_after=NOW + 6 * DAY).cert
    long = root.issue("long.test", not_before=NOW - 140 * DAY, not_after=NOW + 60 * DAY).cert
    # A 6-day certificate issued an hour ago is not "expiring" (a fixed 30-day rule says so).
    assert plots.status_of(six_day, NOW) == plots.VALID
    assert plots.status_of(six_day, NOW, soon=plots.EXPIRING_WITHIN) == plots.EXPIRING
    # Due for renewal at two thirds of its life (4 days in), as ACME clients renew.
    assert plots.status_of(six_day, NOW + 3.9 * DAY) == plots.VALID
    assert plots.status_of(six_day, NOW + 4.1 * DAY) == plots.EXPIRING
    # A 200-day certificate 140 days in is past its renewal point with 60 days still left.
    assert plots.status_of(long, NOW) == plots.EXPIRING


def test_policy_steps_sc081() -> None:
    assert plots.max_lifetime_days(dt.date(2025, 1, 1)) == 398
    assert plots.max_lifetime_days(dt.date(2026, 3, 14)) == 398
    assert plots.max_lifetime_days(dt.date(2026, 3, 15)) == 200
    assert plots.max_lifetime_days(dt.datetime(2027, 3, 15, tzinfo=dt.UTC)) == 100
    assert plots.max_lifetime_days(dt.date(2029, 3, 15)) == 47
    assert plots.max_lifetime_days(dt.date(2019, 1, 1)) is None


# ------------------------------------------------------------------------- chain_timeline


def test_chain_timeline_root_on_top_now_line_days_left(pki: SimpleNamespace) -> None:
    leaf = pki.inter.issue(
        "leaf.test", not_before=NOW - 30 * DAY, not_after=NOW + 60 * DAY
    )  # a pki Leaf: has .cert
    fig = plots.chain_timeline([leaf, pki.inter, pki.root], now=NOW)  # leaf-first, as sent
    assert isinstance(fig, Figure)
    ax = fig.axes[0]  # the whole chain; fig.axes[1] zooms on the leaf
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # y is inverted: tick 0 (root) is drawn on top.
    assert ax.yaxis_inverted()
    assert labels[0].startswith("root") and "Plots Root CA" in labels[0]
    assert labels[1].startswith("intermediate")
    assert labels[2].startswith("leaf") and "leaf.test" in labels[2]

    bars = _bars(ax)
    assert len(bars) == 3
    leaf_bar = bars[2]
    assert leaf_bar.get_x() == pytest.approx(mdates.date2num(NOW - 30 * DAY))
    assert leaf_bar.get_width() == pytest.approx(90)
    assert all(_same_colour(b.get_facecolor(), plots.STATUS_COLORS[plots.VALID]) for b in bars)

    (line,) = _now_lines(ax)
    assert line.get_xdata()[0] == pytest.approx(mdates.date2num(NOW))
    text = _texts(ax)
    assert "60 d left" in text and "90-day certificate" in text
    assert "now · 2026-06-01" in text


def test_chain_timeline_colours_an_expired_intermediate(pki: SimpleNamespace) -> None:
    old = pki.root.create_intermediate(
        "Old Intermediate", not_before=NOW - 900 * DAY, not_after=NOW - 2 * DAY
    )
    fig = plots.chain_timeline([old.cert, pki.root.cert], now=NOW)
    ax = fig.axes[0]
    colours = [mcolors.to_hex(b.get_facecolor()) for b in _bars(ax)]
    assert colours == [
        plots.STATUS_COLORS[plots.VALID].lower(),
        plots.STATUS_COLORS["expired"].lower(),
    ]
    assert "expired 2 d ago" in _texts(ax)


def test_chain_timeline_rejects_non_certificates() -> None:
    with pytest.raises(PlotDataError, match="not a certificate"):
        plots.chain_timeline(["not a cert"])
    with pytest.raises(PlotDataError):
        plots.chain_timeline([])


# ----------------------------------------------------- figures that can be read (issue 11 §6)


def _assert_every_text_inside(fig: Figure) -> None:
    """No label is cut off: everything drawn, and every text's extent, is inside the figure."""
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    drawn = fig.get_tightbbox(renderer)  # in inches; only what is really drawn (ticks in view)
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, drawn
    assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, drawn
    page = fig.bbox
    texts = [t for ax in fig.axes for t in (*ax.texts, ax.title, ax._left_title)]
    texts += [t for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    for t in texts:
        if not t.get_text().strip():
            continue
        box = t.get_window_extent(renderer)
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, f"{t.get_text()!r} cut off"
        assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, f"{t.get_text()!r} cut off"


def _labels_clear_of_now(ax, gids=("bar-label",)) -> None:
    """No bar label runs through the dashed now line, and no two labels overlap."""
    renderer = ax.figure._get_renderer()
    (line,) = _now_lines(ax)
    now_px = ax.transData.transform((line.get_xdata()[0], 0))[0]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_gid() in gids]
    assert boxes
    for text, box in boxes:
        assert not box.x0 < now_px < box.x1, f"{text!r} runs through the now line"
        assert ax.bbox.x0 - 1 <= box.x0 and box.x1 <= ax.bbox.x1 + 1, f"{text!r} leaves the axes"
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def _bar_fraction(ax, bar) -> float:
    lo, hi = ax.get_xlim()
    return bar.get_width() / (hi - lo)


@pytest.fixture(scope="module")
def lab_like() -> SimpleNamespace:
    """The lab's shape: a 10-year root, a 5-year intermediate, 90-day leaves."""
    root = CA("Lab-like Root", not_before=NOW - 730 * DAY, not_after=NOW + 2920 * DAY)
    inter = root.create_intermediate(
        "Lab-like Intermediate", not_before=NOW - 365 * DAY, not_after=NOW + 1460 * DAY
    )
    expired = inter.issue("expired.test", not_before=NOW - 120 * DAY, not_after=NOW - 30 * DAY)
    fresh = inter.issue("fresh.test", not_before=NOW - DAY / 24, not_after=NOW + 90 * DAY)
    return SimpleNamespace(root=root, inter=inter, expired=expired.cert, fresh=fresh.cert)


@pytest.mark.parametrize("which", ["expired", "fresh"])
def test_chain_timeline_zooms_so_a_90_day_leaf_is_readable(lab_like, which) -> None:
    leaf = getattr(lab_like, which)
    fig = plots.chain_timeline([leaf, lab_like.inter.cert, lab_like.root.cert], now=NOW)
    whole, zoom = fig.axes[:2]
    assert zoom.get_gid() == "zoom"
    leaf_whole, leaf_zoom = _bars(whole)[-1], _bars(zoom)[-1]
    # On the 10-year axis the leaf is a sliver; in the zoom it is a real bar.
    assert _bar_fraction(whole, leaf_whole) < 0.05
    assert _bar_fraction(zoom, leaf_zoom) > 0.25
    lo, hi = zoom.get_xlim()
    for moment in (leaf.not_valid_before_utc, leaf.not_valid_after_utc, NOW):
        assert lo < mdates.date2num(moment) < hi  # the leaf and today are in the zoom
    shaded = [p for p in whole.patches if p.get_gid() == "zoom-window"]
    assert len(shaded) == 1  # the upper panel shows where the zoom is
    assert _same_colour(leaf_zoom.get_facecolor(), leaf_whole.get_facecolor())
    _assert_every_text_inside(fig)
    for ax in (whole, zoom):
        _labels_clear_of_now(ax)


def test_chain_timeline_without_a_sliver_needs_no_zoom(pki: SimpleNamespace) -> None:
    old = pki.root.create_intermediate(
        "Young Intermediate", not_before=NOW - 900 * DAY, not_after=NOW + 900 * DAY
    )
    fig = plots.chain_timeline([old.cert, pki.root.cert], now=NOW)
    assert len(fig.axes) == 1
    _assert_every_text_inside(fig)


def test_expiry_gantt_panels_share_one_x_range_and_labels_fit(lab_like, pki) -> None:
    missing = SimpleNamespace(
        host="retired.lab.localhost",
        port=443,
        cert=None,
        verified=False,
        error="Cannot resolve 'retired.lab.localhost': 'retired.lab.localhost' is not in the "
        "lab's hosts table (lab names are never sent to DNS).",
    )
    future = lab_like.inter.issue(
        "future.test", not_before=NOW + 730 * DAY, not_after=NOW + 820 * DAY
    ).cert
    items = [("expired", lab_like.expired), ("fresh", lab_like.fresh), ("future", future), missing]
    fig = plots.expiry_gantt(items, now=NOW)
    main, policy = fig.axes[:2]
    assert main.get_xlim() == pytest.approx(policy.get_xlim())  # one x range ...
    (a,), (b,) = _now_lines(main), _now_lines(policy)
    assert a.get_xdata()[0] == b.get_xdata()[0]  # ... so the two now lines are one line
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    main_now = main.transData.transform((a.get_xdata()[0], 0))[0]
    policy_now = policy.transData.transform((b.get_xdata()[0], 0))[0]
    assert main_now == pytest.approx(policy_now, abs=0.5)  # same pixel column
    _assert_every_text_inside(fig)
    _labels_clear_of_now(main)
    # The retired host's sentence is shown whole, inside its row, above the now line.
    (message,) = [t for t in main.texts if t.get_gid() == "error-message"]
    assert " ".join(message.get_text().split()) == " ".join(missing.error.split())
    assert message.get_window_extent(renderer).x1 <= main.bbox.x1
    assert message.get_zorder() > a.get_zorder()
    # The policy panel still shows every step from the one in force today.
    steps = _texts(policy)
    for words in ("200 days\nfrom 2026-03-15", "100 days\nfrom 2027-03-15", "47 days"):
        assert words in steps


def test_the_labs_chains_draw_coherently() -> None:
    """No lab certificate starts before the CA that signed it existed (review 02-7)."""
    from helpers.lab import get_lab
    from helpers.pki import load_certificate, load_certificates

    lab = get_lab()
    root = load_certificate(lab.ca_bundle)
    for name, path in lab.files.chains.items():
        chain = load_certificates(path)
        if chain[-1].issuer == root.subject and chain[-1].subject != root.subject:
            chain = [*chain, root]
        for child, parent in zip(chain, chain[1:], strict=False):
            if child.issuer != parent.subject:
                continue  # a scenario that is broken on purpose (untrusted, not-a-ca)
            assert child.not_valid_before_utc >= parent.not_valid_before_utc, (
                f"{name}: {child.subject.rfc4514_string()} starts before its issuer"
            )
    expired = load_certificates(lab.files.chains["expired"])
    fig = plots.chain_timeline(expired)
    leaf_bar, inter_bar = _bars(fig.axes[0])[-1], _bars(fig.axes[0])[0]
    assert leaf_bar.get_x() > inter_bar.get_x()  # drawn inside its issuer's lifetime


# --------------------------------------------------------------------------- expiry_gantt


def test_gantt_sorted_by_expiry_coloured_by_status(pki: SimpleNamespace) -> None:
    failed = SimpleNamespace(
        host="refused.test", port=1, cert=None, verified=False, error="Connection refused."
    )
    untrusted = SimpleNamespace(
        host="self-signed.test", port=8443, cert=pki.valid, verified=False, error="self-signed"
    )
    items = [
        ("valid", pki.valid),
        failed,
        ("future", pki.future),
        ("expired", pki.expired),
        untrusted,
        ("expiring", pki.expiring),
    ]
    fig = plots.expiry_gantt(items, now=NOW)
    main, policy = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in main.get_yticklabels()]
    # Soonest notAfter first; rows without a certificate last.
    assert labels == [
        "expired",
        "expiring",
        "valid",
        "self-signed.test:8443",
        "future",
        "refused.test:1",
    ]
    bars = _bars(main)
    assert len(bars) == 6
    expected = ["expired", "expiring", "in date", "in date", "not yet valid", "error"]
    for bar, status in zip(bars, expected, strict=True):
        assert bar.get_gid() == f"status:{status}"
        assert _same_colour(bar.get_facecolor()[:3], plots.STATUS_COLORS[status])
    assert bars[3].get_hatch() == "///" and not bars[2].get_hatch()  # did not verify
    assert "Connection refused." in _texts(main)

    (line,) = _now_lines(main)
    assert line.get_xdata()[0] == pytest.approx(mdates.date2num(NOW))
    legend = [t.get_text() for t in main.get_legend().get_texts()]
    assert [plots.STATUS_LABELS[s] for s in plots.STATUS_COLORS] == legend[:5]
    assert "did not verify" in legend
    assert policy.get_gid() == "policy"
    assert "47 days\nfrom 2029-03-15" in _texts(policy)


def test_gantt_without_policy_and_from_a_mapping(pki: SimpleNamespace) -> None:
    fig = plots.expiry_gantt({"a": pki.valid, "b": pki.expired}, now=NOW, show_policy=False)
    assert len(fig.axes) == 1
    assert len(_bars(fig.axes[0])) == 2


def test_gantt_accepts_bare_certificates_and_rejects_junk(pki: SimpleNamespace) -> None:
    fig = plots.expiry_gantt([pki.valid], now=NOW, show_policy=False)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["valid.test"]
    with pytest.raises(PlotDataError, match="cannot draw"):
        plots.expiry_gantt([42])
    with pytest.raises(PlotDataError):
        plots.expiry_gantt([])


def test_gantt_flags_lifetimes_over_the_policy(pki: SimpleNamespace) -> None:
    issued = dt.datetime(2027, 4, 1, tzinfo=dt.UTC)  # 100-day rule in force
    long = pki.root.issue("long.test", not_before=issued, not_after=issued + 200 * DAY).cert
    fig = plots.expiry_gantt([long], now=issued + DAY)
    assert "over the 100 d max" in _texts(fig.axes[0])


# ------------------------------------------------------------------------ handshake diagrams


@pytest.fixture(scope="module")
def captures() -> SimpleNamespace:
    from helpers.capture import capture_memory
    from helpers.tls13 import decrypt_capture

    root = CA("Diagram Root")
    leaf = root.issue("localhost")

    def contexts(version):
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_server(server)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        root.configure_trust(client)
        client.minimum_version = client.maximum_version = version
        return client, server

    c12, s12 = contexts(ssl.TLSVersion.TLSv1_2)
    tls12 = capture_memory(c12, s12, label="tls12")
    resumed12 = capture_memory(c12, s12, session=tls12.info["session"], label="resumed")
    tls13 = capture_memory(*contexts(ssl.TLSVersion.TLSv1_3), label="tls13")
    return SimpleNamespace(
        tls12=tls12,
        resumed12=resumed12,
        tls13=tls13,
        decrypted13=decrypt_capture(tls13, tls13.info["keylog"]),
    )


def _arrows(ax) -> list:
    return [p for p in ax.patches if str(p.get_gid() or "").startswith("arrow:")]


def _arrow_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == "arrow-label"]


def test_count_flights(captures: SimpleNamespace) -> None:
    assert plots.count_flights(captures.tls12) == plots.FlightCount("TLSv1.2", 4, 2, True)
    assert plots.count_flights(captures.tls13) == plots.FlightCount("TLSv1.3", 3, 1, True)
    # An abbreviated TLS 1.2 handshake (session resumption, RFC 5246 §7.3): 1 round trip.
    assert captures.resumed12.info["session_reused"]
    assert plots.count_flights(captures.resumed12) == plots.FlightCount("TLSv1.2", 3, 1, True)
    assert str(plots.count_flights(captures.tls12)) == "TLS 1.2: 2 round trips (4 flights)"


def test_diagram_lanes_arrows_sizes_colours(captures: SimpleNamespace) -> None:
    cap = captures.tls12
    events = cap.events()
    fig = plots.handshake_diagram(cap)
    (ax,) = fig.axes
    lanes = {t.get_text() for t in ax.texts if str(t.get_gid()).startswith("lane:")}
    assert lanes == {"Client", "Server"}
    assert len([line for line in ax.get_lines() if line.get_gid() == "lane"]) == 2

    arrows, labels = _arrows(ax), _arrow_labels(ax)
    assert len(arrows) == len(labels) == len(events)  # OpenSSL: one message per record
    assert labels[0] == f"ClientHello ({events[0].size} B)"
    assert labels[:5] == [f"{e.label} ({e.size} B)" for e in events[:5]]
    for arrow, event in zip(arrows, events, strict=True):
        want = plots.ENCRYPTED_COLOR if event.encrypted else plots.PLAINTEXT_COLOR
        assert _same_colour(arrow.get_edgecolor(), want)
        # Client → server arrows go right, server → client arrows go left.
        (x0, _), (x1, _) = arrow._posA_posB
        assert (x1 > x0) == (event.direction == "c2s")
    assert "Finished (45 B)" in labels  # TLS 1.2: Finished is the record after CCS
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["plaintext", "encrypted"]
    assert "TLS 1.2 handshake" in ax.get_title()
    assert any("handshake complete: 2 round trips" in t.get_text() for t in ax.texts)


def test_diagram_tls13_guesses_unless_decrypted(captures: SimpleNamespace) -> None:
    guessed = _arrow_labels(plots.handshake_diagram(captures.tls13).axes[0])
    assert any(label.startswith("Certificate? (") for label in guessed)
    exact_ax = plots.handshake_diagram(captures.tls13, decrypted=captures.decrypted13).axes[0]
    exact = _arrow_labels(exact_ax)
    assert len(exact) == len(guessed)
    assert not any("?" in label for label in exact)
    for name in ("EncryptedExtensions", "Certificate", "CertificateVerify", "NewSessionTicket"):
        assert any(label.startswith(name + " (") for label in exact), name
    certificate = captures.decrypted13.find("Certificate")
    record = next(r for r in captures.decrypted13.records if certificate in r.messages)
    size = 5 + int.from_bytes(record.header[3:5], "big")
    assert f"Certificate ({size} B)" in exact


def test_diagram_timestamps_handshake_only_and_given_axes(captures: SimpleNamespace) -> None:
    import matplotlib.pyplot as plt

    fig = plots.handshake_diagram(captures.tls13, timestamps=True, handshake_only=True)
    ax = fig.axes[0]
    labels = _arrow_labels(ax)
    assert labels[-1].startswith("Finished")  # stops at the client's Finished
    stamps = [t for t in ax.texts if t.get_gid() == "timestamp"]
    assert len(stamps) == len(labels) and all(t.get_text().endswith(" ms") for t in stamps)

    own, given = plt.subplots()
    try:
        assert plots.handshake_diagram(captures.tls12, ax=given, title="mine") is own
        assert given.get_title() == "mine"
    finally:
        plt.close(own)
    with pytest.raises(PlotDataError, match="needs a Capture"):
        plots.handshake_diagram(b"\x16\x03\x01")


def test_compare_handshakes_titles_and_flights(captures: SimpleNamespace) -> None:
    fig = plots.compare_handshakes(captures.tls12, captures.tls13)
    left, right = fig.axes[:2]
    assert left.get_title() == "TLS 1.2: 2 round trips, 4 flights"
    assert right.get_title() == "TLS 1.3: 1 round trip, 3 flights"
    flights = [
        [t.get_text() for t in ax.texts if t.get_gid() == "flight-label"] for ax in (left, right)
    ]
    assert flights == [[f"flight {i}" for i in (1, 2, 3, 4)], [f"flight {i}" for i in (1, 2, 3)]]
    for ax in (left, right):  # handshakes only: no tickets or data after the last Finished
        assert not any("application data" in label for label in _arrow_labels(ax))
    assert left.get_ylim() == right.get_ylim()  # same vertical scale


# --- notebook 06: the handshake timeline (helpers/plots/timeline.py) -------------------


def test_timeline_rows_labels_and_resumed_tls12_one_round_trip_shorter(tmp_path) -> None:
    """Four real handshakes through a delaying relay, drawn: the resumed TLS 1.2 row ends
    one round trip before the full TLS 1.2 row (RFC 5246 §7.3), resumed TLS 1.3 does not
    gain a round trip on full TLS 1.3 (RFC 8446 §2.2)."""
    import ssl

    import matplotlib.pyplot as plt

    from helpers import timing
    from helpers.lab.server import Reactor, Response
    from helpers.pki import CA

    delay = 0.03
    rtt_ms = 2 * delay * 1000
    root = CA("Timeline Root")
    cafile = tmp_path / "root.pem"
    cafile.write_bytes(root.cert_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    root.issue("127.0.0.1").configure_server(server)
    reactor = Reactor(name="timeline-figure")
    port = reactor.add_site(server, lambda _request: Response(body=b"ok")).getsockname()[1]
    reactor.start()
    try:
        timings = timing.measure_timeline(("127.0.0.1", port), delay=delay, cafile=cafile)
    finally:
        reactor.stop()
    fig = plots.handshake_timeline(timings)
    try:
        (ax,) = fig.axes
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert [label.split("\n")[0] for label in labels] == [
            "TLS 1.2 full handshake",
            "TLS 1.2 resumed",
            "TLS 1.3 full handshake",
            "TLS 1.3 resumed",
        ]
        assert ["session_reused" in label for label in labels] == [False, True, False, True]
        done = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_gid() == "handshake-done"]
        assert len(done) == 4
        full12, resumed12, full13, resumed13 = done
        # Resumed TLS 1.2 is shorter than full TLS 1.2 by one round trip (give or take CPU).
        assert 0.5 * rtt_ms < full12 - resumed12 < 1.5 * rtt_ms, (full12, resumed12)
        # TLS 1.3 resumption keeps its one round trip.
        assert abs(resumed13 - full13) < 0.5 * rtt_ms, (full13, resumed13)
        # Every row starts with one modelled TCP round trip, then at least its TLS RTTs.
        assert full12 >= 3 * rtt_ms and min(resumed12, full13, resumed13) >= 2 * rtt_ms
        rtt_labels = [t.get_text() for t in ax.texts if t.get_gid() == "rtt-label"]
        assert [label.split(",")[0] for label in rtt_labels] == ["TLS: 2 RTT"] + ["TLS: 1 RTT"] * 3
        assert "1 RTT less than full" in rtt_labels[1]
        assert "no RTT saved vs full" in rtt_labels[3]
        assert "less than full" not in rtt_labels[0] + rtt_labels[2]
        # Nothing drawn past the right edge: the longest row and its label fit.
        assert ax.get_xlim()[1] > max(done)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        figure_box = fig.bbox
        for text in ax.texts:
            if text.get_gid() == "rtt-label":
                box = text.get_window_extent(renderer)
                assert box.x1 <= figure_box.x1 + 1, f"{text.get_text()!r} is cut off"
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- renewal_timeline
# notebook 10: renewals drawn from real certificates, with two-thirds ticks and ARI windows


def test_renewal_timeline_shows_renewals_windows_and_the_missed_one() -> None:
    from helpers.acme import ari

    root = CA("Renewal Root CA", not_before=NOW - 3000 * DAY, not_after=NOW + 3000 * DAY)
    issuer = root.create_intermediate(
        "Renewal ACME CA", not_before=NOW - 400 * DAY, not_after=NOW + 1000 * DAY
    )

    def cert(name: str, start: float, life: float):  # days relative to NOW
        return issuer.issue(
            name, not_before=NOW + start * DAY, not_after=NOW + (start + life) * DAY
        ).cert

    # shop: renewed twice at about day 62 of 90; api: 6-day certificates every 4 days;
    # late: a 90-day certificate at day 75 that nobody renewed.
    shop = [cert("shop.test", s, 90) for s in (-130, -68, -6)]
    api = [cert("api.test", s, 6) for s in (-13, -9, -5, -1)]
    late = [cert("late.test", -75, 90)]
    windows = {c.serial_number: ari.suggested_window(c) for c in [*shop, *late]}
    fig = plots.renewal_timeline({"shop": shop, "api": api, "late": late}, NOW, windows=windows)
    (ax,) = fig.axes
    gids = [str(p.get_gid()) for p in ax.patches]
    assert gids.count("replaced") == 2 + 3  # every certificate but each host's newest
    assert gids.count("unused") == 2 + 3  # each was renewed before it expired
    current = [p for p in ax.patches if str(p.get_gid()).startswith("status:")]
    assert len(current) == 3
    assert gids.count("ari-window") == len(windows) == 4
    # One row per certificate, hosts soonest expiry first, each host's history oldest first.
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == [
        "api", *(f"\u21b3 renewal {i}" for i in (1, 2, 3)),
        "late",
        "shop", *(f"\u21b3 renewal {i}" for i in (1, 2)),
    ]  # fmt: skip
    # A staircase: each grey bar ends where the next row's bar starts, at a triangle.
    history = [*api, *late, *shop]
    bars = sorted(
        (p for p in ax.patches if p.get_gid() == "replaced" or p in current),
        key=lambda p: p.get_y(),
    )
    assert [b.get_x() for b in bars] == pytest.approx(
        [mdates.date2num(c.not_valid_before_utc) for c in history]
    )
    for older, newer in ((0, 1), (1, 2), (2, 3), (5, 6), (6, 7)):
        assert bars[older].get_x() + bars[older].get_width() == pytest.approx(bars[newer].get_x())
    renewals = [line for line in ax.get_lines() if line.get_gid() == "renewal"]
    starts = sorted(mdates.date2num(c.not_valid_before_utc) for c in [*shop[1:], *api[1:]])
    assert sorted(line.get_xdata()[0] for line in renewals) == pytest.approx(starts)
    # One two-thirds tick per certificate, at notBefore + 2/3 of its lifetime.
    ticks = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "two-thirds")
    assert ticks == pytest.approx(sorted(mdates.date2num(ari.two_thirds(c)) for c in history))
    labels = [t.get_text() for t in ax.texts if t.get_gid() == "bar-label"]
    assert sum("replaced after 62 d · 90 d cert" in text for text in labels) == 2
    assert sum("replaced after 4 d · 144 h cert" in text for text in labels) == 3
    assert [text for text in labels if "renewal missed" in text] == [
        "15 d left · 90 d cert · renewal missed"
    ]
    late_bar = bars[rows.index("late")]
    assert _same_colour(late_bar.get_facecolor(), plots.STATUS_COLORS[plots.EXPIRING])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ARI window (RFC 9773)" in legend and "two thirds" in legend
    assert "renewed here" in legend and "replaced by its renewal" in legend
    assert ax.get_title(loc="left") == "Certificates of 3 hosts and their 5 renewals"
    assert len(_now_lines(ax)) == 1
    _assert_every_text_inside(fig)
    _labels_clear_of_now(ax)


def test_renewal_timeline_without_windows_and_rejecting_junk() -> None:
    root = CA("Renewal Root CA 2", not_before=NOW - 30 * DAY, not_after=NOW + 300 * DAY)
    one = root.issue("one.test", not_before=NOW - 10 * DAY, not_after=NOW + 80 * DAY).cert
    fig = plots.renewal_timeline([one], NOW)  # bare certificates, grouped by name
    (ax,) = fig.axes
    assert not [p for p in ax.patches if p.get_gid() in ("ari-window", "replaced")]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["one.test"]
    assert ax.get_title(loc="left") == "Certificates of 1 host and its 0 renewals"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ARI window (RFC 9773)" not in legend and "renewed here" not in legend
    with pytest.raises(PlotDataError):
        plots.renewal_timeline([], NOW)
    with pytest.raises(PlotDataError):
        plots.renewal_timeline([("x", None)], NOW)
