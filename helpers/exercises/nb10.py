"""Checks for the exercises of notebook 10 · Certificates that renew themselves.

``finalize_request`` posts what the learner's function builds to a real ACME server of
the lab's kind (:class:`helpers.acme.server.AcmeServer`, HTTPS on loopback), with an
order made ready for it through HTTP-01, and downloads the certificate it issued.
``renewal_time`` asks about certificates dated years from today, so an answer that reads
the clock instead of the ``now`` it is given cannot pass (the pattern of notebook 03's
``alert_level``). Each check refuses answers that *work* once but are unsafe, and says why.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import threading
from pathlib import Path
from typing import Any

from . import exercise

_UTC = _dt.UTC

# ------------------------------------------------------------------ renewal_time


def _aware_utc(got: Any, what: str) -> _dt.datetime:
    assert got is not None, f"for {what}: return a datetime (when to renew)"
    assert isinstance(got, _dt.datetime), (
        f"for {what} you returned {got!r}: return a datetime (when to renew), not "
        f"{type(got).__name__}"
    )
    assert got.tzinfo is not None and got.utcoffset() == _dt.timedelta(0), (
        f"for {what} you returned {got!r}, a naive or non-UTC datetime: return an aware UTC "
        "datetime, like the certificate's not_valid_after_utc and the now you are given "
        "(comparing naive and aware datetimes raises TypeError)"
    )
    return got


@exercise(
    "nb10",
    params=("cert", "window", "now"),
    hints=[
        "Without a window: cert.not_valid_before_utc + (not_valid_after_utc - "
        "not_valid_before_utc) * 2 / 3 is two thirds of the lifetime. If that is before now, "
        "return now.",
        "With a window: pick window.start + random.uniform(0, seconds of the window) (a "
        "timedelta(seconds=...)): a uniformly random moment, RFC 9773 §4.2. Not the start: "
        "every client of the CA would come back in the same second.",
        "max(picked, now) covers both 'the moment has passed' and 'the whole window is in "
        "the past'. Use the now argument, never datetime.now(): the check asks about other days.",
    ],
)
def renewal_time(answer):
    from ..acme.ari import RenewalWindow, two_thirds
    from ..pki import new_private_key, self_signed

    day, hour, second = _dt.timedelta(days=1), _dt.timedelta(hours=1), _dt.timedelta(seconds=1)
    real_now = _dt.datetime.now(_UTC)
    # A day about three years ahead: an answer that reads the clock instead of `now` sees
    # every test certificate as not yet issued, whenever the check runs.
    now = (real_now + 1000 * day).replace(hour=12, minute=0, second=0, microsecond=0)
    key = new_private_key()

    def cert(lifetime: _dt.timedelta, age: _dt.timedelta):
        """A certificate of ``lifetime`` that was issued ``age`` before ``now``."""
        start = now - age
        return self_signed(
            "renew.lab.localhost", key=key, not_before=start, not_after=start + lifetime
        ).cert

    def clocked(got: _dt.datetime) -> bool:
        return abs(got - real_now) < 10 * 60 * second

    wall_clock = (
        "; that is this computer's clock, not the `now` the check passed you (a day "
        f"{now:%Y-%m-%d}): use the now argument"
    )

    # 1. No ARI, a fresh 90-day certificate: two thirds of its lifetime.
    fresh = cert(90 * day, 10 * day)
    got = _aware_utc(answer(fresh, None, now), "a 90-day certificate without an ARI window")
    due = two_thirds(fresh)
    assert abs(got - due) <= second, (
        f"without an ARI window, a 90-day certificate issued on {fresh.not_valid_before_utc:%Y-%m-%d} "
        f"should be renewed at two thirds of its lifetime, {due:%Y-%m-%d %H:%M} UTC; you returned "
        f"{got:%Y-%m-%d %H:%M}" + (wall_clock if clocked(got) else "")
    )

    # 2. No ARI, two thirds already passed: now.
    late = cert(90 * day, 70 * day)
    got = _aware_utc(answer(late, None, now), "a 90-day certificate 70 days old, without ARI")
    assert abs(got - now) <= second, (
        f"a 90-day certificate 70 days old passed two thirds of its lifetime on "
        f"{two_thirds(late):%Y-%m-%d}, before now ({now:%Y-%m-%d %H:%M}): renew now, return now; "
        f"you returned {got:%Y-%m-%d %H:%M}"
        + (
            wall_clock
            if clocked(got)
            else " (a time in the past leaves the decision to whatever runs the schedule; did "
            "you compare with datetime.now() instead of now?)"
            if got < now
            else ""
        )
    )

    # 3. An ARI window ahead: uniformly random inside it, not one fixed moment.
    ahead = RenewalWindow(now + 55 * day, now + 57 * day)
    picks = [
        _aware_utc(answer(fresh, ahead, now), "an ARI window 55 to 57 days ahead")
        for _ in range(60)
    ]
    outside = [p for p in picks if not ahead.start <= p <= ahead.end]
    assert not outside, (
        f"the CA's window runs {ahead.start:%Y-%m-%d %H:%M} to {ahead.end:%Y-%m-%d %H:%M} UTC, "
        f"and you returned {outside[0]:%Y-%m-%d %H:%M}, outside it: follow the CA's window "
        "(RFC 9773 §4.2)" + (wall_clock if clocked(outside[0]) else "")
    )
    if all(abs(p - ahead.start) <= second for p in picks):
        raise AssertionError(
            "you always return the start of the window: every client of the CA whose "
            "certificates came out in the same second would come back in the same second, "
            "and knock it over. RFC 9773 §4.2 asks for a uniformly random moment in the window"
        )
    if all(abs(p - ahead.end) <= second for p in picks):
        raise AssertionError(
            "you always return the end of the window: every client at the same moment, and "
            "the last moment the CA asked for, with no time left if that attempt fails. Pick a "
            "uniformly random moment in the window (RFC 9773 §4.2)"
        )
    fractions = [(p - ahead.start) / (ahead.end - ahead.start) for p in picks]
    assert len({round(f, 6) for f in fractions}) >= 50, (
        "your moments repeat: 60 asks gave fewer than 50 different answers. Draw a new "
        "uniformly random moment each time (random.uniform), so clients spread out"
    )
    mean = statistics.fmean(fractions)
    assert 0.3 <= mean <= 0.7, (
        f"your 60 moments sit on average at {mean:.0%} of the window, not around the middle: "
        "draw them uniformly over the whole window (RFC 9773 §4.2), not from one end"
    )

    # 4. The CA moved the window earlier than two thirds (an incident): follow it.
    early = RenewalWindow(now + 2 * hour, now + 6 * hour)
    got = _aware_utc(answer(fresh, early, now), "a window the CA moved early")
    assert early.start <= got <= early.end, (
        f"the CA moved this certificate's window to {early.start:%Y-%m-%d %H:%M}–"
        f"{early.end:%H:%M} UTC, long before two thirds of its lifetime "
        f"({two_thirds(fresh):%Y-%m-%d}); you returned {got:%Y-%m-%d %H:%M}. When a CA must "
        "revoke certificates early (a mis-issuance), ARI is how it asks every client to renew "
        "in time: the window wins over two thirds" + (wall_clock if clocked(got) else "")
    )

    # 5. The window is over: renew now, never a time in the past.
    over = RenewalWindow(now - 3 * day, now - 2 * day)
    got = _aware_utc(answer(fresh, over, now), "an ARI window that ended 2 days ago")
    assert abs(got - now) <= second, (
        f"the ARI window ended on {over.end:%Y-%m-%d %H:%M} UTC, two days before now: renew "
        f"now (return now). You returned {got:%Y-%m-%d %H:%M}"
        + (
            wall_clock
            if clocked(got)
            else ": a time in the past leaves it to whatever runs the schedule to notice"
            if got < now
            else ""
        )
    )

    # 6. A window that began an hour ago: a moment in [now, end], never in the past.
    straddle = RenewalWindow(now - hour, now + hour)
    picks = [
        _aware_utc(answer(fresh, straddle, now), "a window from an hour ago to an hour ahead")
        for _ in range(40)
    ]
    past = [p for p in picks if p < now - second]
    assert not past, (
        f"the window runs from an hour ago to an hour ahead and you returned "
        f"{past[0]:%Y-%m-%d %H:%M:%S}, before now: a moment that has passed means renew now "
        "(RFC 9773 §4.2); return now instead" + (wall_clock if clocked(past[0]) else "")
    )
    assert all(p <= straddle.end + second for p in picks), (
        "for a window from an hour ago to an hour ahead you returned a moment after its end"
    )
    assert any(p > now + second for p in picks), (
        "for a window from an hour ago to an hour ahead you always said 'now': only the "
        "random moments that fall in the past mean now; the others are later in the window"
    )

    # 7. A 160-hour certificate (Let's Encrypt's shortlived profile), no ARI, and one
    #    whose window lies after two thirds: the CA's word still counts.
    short = cert(160 * hour, 20 * hour)
    got = _aware_utc(answer(short, None, now), "a 160-hour certificate without ARI")
    assert abs(got - two_thirds(short)) <= second, (
        f"a 160-hour certificate issued 20 hours ago should be renewed at two thirds, "
        f"{two_thirds(short):%Y-%m-%d %H:%M} UTC; you returned {got:%Y-%m-%d %H:%M}: the rule "
        "is relative to the lifetime, whatever its length"
    )
    later = RenewalWindow(now + 100 * hour, now + 110 * hour)
    got = _aware_utc(answer(short, later, now), "a window later than two thirds")
    assert later.start <= got <= later.end, (
        f"the CA's window ({later.start:%Y-%m-%d %H:%M}–{later.end:%H:%M} UTC) is where it wants "
        f"this certificate renewed, even past two thirds (it may be spreading its load); you "
        f"returned {got:%Y-%m-%d %H:%M}. With a window, follow the window"
    )


# ------------------------------------------------------------------ finalize_request


def _decoded_json(text: Any, what: str) -> Any:
    from ..acme.jws import b64url_decode
    from ..errors import ParseError

    assert isinstance(text, str), f"the JWS member {what!r} must be a base64url string"
    try:
        return json.loads(b64url_decode(text))
    except (ParseError, ValueError, UnicodeDecodeError):
        raise AssertionError(
            f"the JWS member {what!r} is not base64url-encoded JSON: encode "
            "json.dumps(...).encode() with base64url, without '=' padding (RFC 7515 §2)"
        ) from None


def _why_unsafe(body, *, account_key, certificate_key, names, url, nonce, kid, used) -> str | None:
    """What is wrong with a finalize body, in one sentence, or None if nothing is."""
    from cryptography import x509

    from ..acme import jws
    from ..acme.problems import AcmeProblem

    header = _decoded_json(body["protected"], "protected")
    assert isinstance(header, dict), "the protected header must be a JSON object"
    alg = header.get("alg")
    if alg in (None, "none", "") or not body.get("signature"):
        return (
            'your request is not signed ("alg": "none" or no signature): anybody who sees or '
            "guesses an account URL could then finalize orders and revoke certificates as that "
            "account. RFC 8555 §6.2 requires a real signature; ACME servers refuse 'none' "
            "(ES256 for an EC P-256 account key)"
        )
    if header.get("nonce") != nonce:
        if header.get("nonce") in used:
            return (
                "your second request carries the nonce of the first: a nonce works once, and "
                "the server refuses a request whose nonce it has seen (a replay, RFC 8555 "
                "§6.5). Put the nonce you are given into every request, never a saved one"
            )
        return (
            f"the protected header's nonce is {header.get('nonce')!r}, not the nonce you were "
            "given: the server accepts only a nonce it handed out, once (RFC 8555 §6.5)"
        )
    if header.get("url") != url:
        return (
            f"the protected header's url is {header.get('url')!r}, not the finalize URL the "
            "request goes to: the server checks that they match, so a request signed for one "
            "resource cannot be replayed at another (RFC 8555 §6.4)"
        )
    if "jwk" in header or header.get("kid") != kid:
        return (
            "the protected header must name the account with 'kid' (the account URL you are "
            "given) and carry no 'jwk': only newAccount and revocation by certificate key "
            "send the key itself (RFC 8555 §6.2)"
        )
    if alg != "ES256":
        return f'the account key is an EC P-256 key: sign with "ES256", not {alg!r}'

    def signed_by(public_key) -> bool:
        try:
            jws.verify(json.dumps(body).encode(), lambda _kid: public_key)
        except AcmeProblem:
            return False
        return True

    if not signed_by(account_key.public_key()):
        if signed_by(certificate_key.public_key()):
            return (
                "your JWS is signed with the certificate key: the server checks it with the "
                "key of the account named by 'kid', so it is refused. The account key signs "
                "every request (it proves which account is asking, RFC 8555 §6.2); the "
                "certificate key signs only the CSR"
            )
        signature = body.get("signature")
        size = len(jws.b64url_decode(signature)) if isinstance(signature, str) else 0
        return (
            f"the signature does not verify with the account key (it is {size} bytes): sign "
            "protected + '.' + payload (the two base64url strings) with ECDSA and SHA-256, then "
            "send r and s as 32 bytes each, side by side (64 bytes), not the DER form "
            "cryptography returns (RFC 7518 §3.4; decode_dss_signature splits it)"
        )
    payload = _decoded_json(body["payload"], "payload")
    assert isinstance(payload, dict) and isinstance(payload.get("csr"), str), (
        'the payload must be {"csr": base64url(CSR in DER)} (RFC 8555 §7.4)'
    )
    try:
        csr = x509.load_der_x509_csr(jws.b64url_decode(payload["csr"]))
    except ValueError:
        return (
            "the payload's csr is not a base64url DER CSR: send csr.public_bytes(Encoding.DER), "
            "base64url-encoded, not PEM (RFC 8555 §7.4)"
        )
    in_csr = csr.public_key().public_numbers()
    if in_csr == account_key.public_key().public_numbers():
        return (
            "your CSR carries the account key: the certificate would publish it, and every web "
            "server holding the certificate's key would hold the key that controls the ACME "
            "account (order, revoke). RFC 8555 §11.1: servers MUST refuse it; use the "
            "certificate key for the CSR"
        )
    if in_csr != certificate_key.public_key().public_numbers():
        return "the CSR does not carry certificate_key's public key: sign it with certificate_key"
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        in_names = sorted(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        in_names = []
    if in_names != sorted(names):
        return (
            f"the CSR names {in_names}, the order {sorted(names)}: put exactly the order's names "
            "in a subjectAltName extension (RFC 8555 §7.4: the CSR must match the order)"
        )
    return None


@exercise(
    "nb10",
    params=("account_key", "certificate_key", "names", "url", "nonce", "kid"),
    hints=[
        "Two parts. The CSR: x509.CertificateSigningRequestBuilder() with an empty "
        "subject_name(x509.Name([])) and a SubjectAlternativeName of x509.DNSName(n) for each "
        "name, .sign(certificate_key, hashes.SHA256()); its DER, base64url, goes in the payload "
        '{"csr": ...}.',
        'The JWS: protected = b64url(json of {"alg": "ES256", "kid": kid, "nonce": nonce, '
        '"url": url}), payload = b64url(json of {"csr": ...}); sign f"{protected}.{payload}" '
        "with account_key (ECDSA, SHA-256). helpers.acme.jws.b64url does base64url.",
        "cryptography returns a DER signature; decode_dss_signature(der) gives r and s: send "
        "r.to_bytes(32, 'big') + s.to_bytes(32, 'big'), base64url (RFC 7518 §3.4). Section 2 "
        "of the notebook does each step once.",
    ],
)
def finalize_request(answer):
    import tempfile
    from pathlib import Path

    import requests
    from cryptography.hazmat.primitives.asymmetric import ec

    from ..acme.client import AcmeClient, Order
    from ..acme.http01 import Http01Responder
    from ..acme.problems import AcmeProblem
    from ..acme.server import AcmeServer
    from ..pki import CA

    root = CA("Exercise Root CA")
    issuer = root.create_intermediate("Exercise ACME CA")
    account_key = ec.generate_private_key(ec.SECP256R1())
    with (
        tempfile.TemporaryDirectory(prefix="tls-course-nb10-") as tmp,
        Http01Responder() as responder,  # first: its port is taken, the CA validates there
        AcmeServer(issuer, [issuer.cert, root.cert], http01_port=responder.port) as server,
    ):
        bundle = Path(tmp, "root.pem")
        bundle.write_bytes(root.cert_pem)
        client = AcmeClient(server.directory, account_key=account_key, ca_bundle=bundle)
        kid = client.register()
        used: list[str] = []
        for names in (
            ["shop.lab.localhost", "www.shop.lab.localhost"],
            ["api.lab.localhost"],
        ):
            order = client.new_order(names)
            for authorization in order.authorizations:
                challenge = client.respond(client.authorization(authorization), responder)
                responder.wait_until_fetched(challenge["token"], 10)  # then poll (§7.5.1)
                client.poll(authorization, until=("valid",), deadline=10)
            order = Order(order.url, client.poll(order.url, until=("ready",), deadline=10))
            certificate_key = ec.generate_private_key(ec.SECP256R1())
            nonce = client.new_nonce()
            body = answer(account_key, certificate_key, list(names), order.finalize_url, nonce, kid)
            assert isinstance(body, dict) and all(
                isinstance(body.get(m), str) for m in ("protected", "payload", "signature")
            ), (
                'return the flattened JWS as a dict of three strings: {"protected": ..., '
                '"payload": ..., "signature": ...} (RFC 7515 §7.2.2), not ' + f"{body!r:.80}"
            )
            sent = requests.post(
                order.finalize_url,
                data=json.dumps(body),
                headers={"Content-Type": "application/jose+json"},
                verify=str(bundle),
                timeout=10,
            )
            refused = None
            if sent.status_code >= 400:
                refused = AcmeProblem.from_document(sent.json(), sent.status_code)
            why = _why_unsafe(
                body,
                account_key=account_key,
                certificate_key=certificate_key,
                names=names,
                url=order.finalize_url,
                nonce=nonce,
                kid=kid,
                used=used,
            )
            used.append(nonce)
            said = (
                f" (the lab's ACME server answered {refused.type}: {refused.detail})"
                if refused
                else ""
            )
            if why is not None:
                raise AssertionError(why + said)
            assert refused is None, f"the lab's ACME server refused your request: {refused}"
            done = Order(order.url, client.poll(order.url, until=("valid",), deadline=10))
            cert = client.download(done)[0]
            assert (
                cert.public_key().public_numbers() == certificate_key.public_key().public_numbers()
            ), "the certificate the CA issued does not hold certificate_key"


# ------------------------------------------------------------------ install_renewal
#
# How the check sees *when* a file was readable: an audit hook (PEP 578, as
# helpers.netguard uses for sockets). Python raises an audit event before it opens a
# file, changes its mode, renames or removes it; while a check records, the hook notes
# every file opened for writing and, at each later event, looks at those files' modes
# (before the operation runs). A key file that was ever seen with group or other bits
# set was readable by other users at that moment, whatever chmod came after. Hooks
# cannot be removed, so the one hook is added once and does nothing unless a check
# records.


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class _FileWatch:
    """What the learner's code did to files while the check recorded."""

    def __init__(self, live: Path) -> None:
        self.live = live
        self.thread = threading.get_ident()  # other threads (a lab server) are not the answer
        self.watched: dict[str, None] = {}  # paths opened for writing, in order
        self.open_modes: dict[int, int] = {}  # inode -> the loosest mode seen while watched
        self.in_place: list[str] = []  # live files opened for writing
        self.removed: list[str] = []  # live files removed
        self.renamed_from: list[str] = []  # directories renamed from (sources of os.replace)
        self._busy = False

    def _look(self) -> None:
        for path in self.watched:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_mode & 0o077:
                self.open_modes[st.st_ino] = st.st_mode & 0o777

    def event(self, name: str, args: tuple[Any, ...]) -> None:
        if self._busy or threading.get_ident() != self.thread:
            return
        self._busy = True
        try:
            self._look()  # before the operation runs: what could others read until now?
            if name == "open":
                path, mode, flags = args
                if isinstance(path, bytes | str | os.PathLike):
                    writes = (mode is not None and any(c in mode for c in "wax+")) or (
                        mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
                    )
                    if writes:
                        full = os.path.realpath(os.fsdecode(path))
                        self.watched[full] = None
                        if Path(full).parent == self.live and Path(full).exists():
                            self.in_place.append(Path(full).name)
            elif name == "os.rename":
                source = os.path.realpath(os.fsdecode(args[0]))
                self.renamed_from.append(str(Path(source).parent))
            elif name == "os.remove":
                path = Path(os.path.realpath(os.fsdecode(args[0])))
                if path.parent == self.live and path.name in _LIVE_FILES:
                    self.removed.append(path.name)
        finally:
            self._busy = False


_LIVE_FILES = ("fullchain.pem", "privkey.pem")
_WATCH: list[_FileWatch] = []
_HOOKED = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _WATCH and event in ("open", "os.chmod", "os.rename", "os.remove"):
        try:
            _WATCH[-1].event(event, args)
        except Exception:  # noqa: BLE001, S110 - a hook that raises would break the operation
            pass


def _watching(live: Path):
    """A context manager that records file events under ``live`` (umask 022 meanwhile)."""
    import contextlib
    import sys

    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True

    @contextlib.contextmanager
    def recording():
        watch = _FileWatch(live)
        old_umask = os.umask(0o022)  # the usual default: files are created 0644 unless asked
        _WATCH.append(watch)
        try:
            yield watch
        finally:
            _WATCH.remove(watch)
            os.umask(old_umask)
            watch._look()

    return recording()


@exercise(
    "nb10",
    params=("chain_pem", "key_pem", "live"),
    returns_none=True,
    hints=[
        "For each file: write a NEW file in the same directory as the live one, then "
        "os.replace(new, live_path). A rename is atomic: a server reading the file at any "
        "moment sees the old file or the new one, never half of one.",
        "Create the key's new file with mode 0600 from the start: "
        "os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) and os.fdopen(fd, 'wb'), "
        "or tempfile.mkstemp(dir=live), which creates 0600 files. Writing first and "
        "chmod-ing after leaves a moment in which anyone can open the key.",
        "Name the new files uniquely (mkstemp does), and if anything fails, remove your "
        "new file: a leftover is one more copy of the key.",
    ],
)
def install_renewal(answer):
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ..pki import CA, private_key_pem

    ca = CA("Exercise Install CA")
    with tempfile.TemporaryDirectory(prefix="tls-course-nb10-") as tmp:
        live = Path(tmp, "live", "shop.lab.localhost")
        live.mkdir(parents=True)
        old = ca.issue("shop.lab.localhost")
        (live / "fullchain.pem").write_bytes(old.cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(live / "privkey.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private_key_pem(old.key))
        for round_ in (1, 2):  # a renewal, then the next one over it
            new = ca.issue("shop.lab.localhost")
            chain_pem = new.cert.public_bytes(serialization.Encoding.PEM) + ca.cert_pem
            key_pem = private_key_pem(new.key)
            before = {name: (live / name).stat().st_ino for name in _LIVE_FILES}
            with _watching(live.resolve()) as watch:
                answer(chain_pem, key_pem, str(live))
            what = "the first renewal" if round_ == 1 else "a second renewal over the first"
            if watch.in_place:
                raise AssertionError(
                    f"in {what} your code opened the live {watch.in_place[0]} for writing: a "
                    "server (or a reload hook) that reads it at that moment gets a truncated "
                    "or half-written file. Write a new file next to it and os.replace() it "
                    "over the live one: a rename is atomic"
                )
            if watch.removed:
                raise AssertionError(
                    f"in {what} your code removed the live {watch.removed[0]} before putting "
                    "the new one in place: a server reloading in between finds no file. "
                    "os.replace(new, live) swaps them in one step"
                )
            key_file = live / "privkey.pem"
            assert key_file.is_file() and (live / "fullchain.pem").is_file(), (
                f"after {what}, {live} must hold fullchain.pem and privkey.pem"
            )
            assert key_file.read_bytes() == key_pem, (
                f"after {what}, privkey.pem does not hold the new key you were given"
            )
            installed = x509.load_pem_x509_certificates((live / "fullchain.pem").read_bytes())
            assert installed and installed[0] == new.cert, (
                f"after {what}, fullchain.pem does not start with the new certificate"
            )
            st = key_file.stat()
            if st.st_ino in watch.open_modes or st.st_mode & 0o077:
                mode = watch.open_modes.get(st.st_ino, st.st_mode & 0o777)
                raise AssertionError(
                    f"in {what} the new key file was readable by other users (mode "
                    f"{mode:o}) while it held, or was about to hold, the private key"
                    + (
                        ": you restricted it later, but whoever opened it in that moment "
                        "keeps reading it. Create it with mode 0600 from the start "
                        "(os.open(..., 0o600), or tempfile.mkstemp)"
                        if not st.st_mode & 0o077
                        else ". A private key file must be 0600: create it that way "
                        "(os.open(..., 0o600), or tempfile.mkstemp)"
                    )
                )
            foreign = [d for d in watch.renamed_from if Path(d).resolve() != live.resolve()]
            if foreign:
                raise AssertionError(
                    f"in {what} your new file was written in {foreign[0]}, then moved into "
                    f"{live.name}/: write it in the live directory itself. os.replace() is "
                    "atomic only within one file system (/tmp is often another one: then it "
                    "fails, or a copy is not atomic), and a shared /tmp invites symlink tricks"
                )
            unchanged = [
                name for name in _LIVE_FILES if (live / name).stat().st_ino == before[name]
            ]
            assert not unchanged, (
                f"in {what} the live {unchanged[0]} is still the same file (same inode), "
                "rewritten where it stood: replace it with os.replace() instead"
            )
            left = sorted(p.name for p in live.iterdir() if p.name not in _LIVE_FILES)
            assert not left, (
                f"after {what} your code left {left} in the live directory: temporary files "
                "are copies of the key or chain; rename them into place, or remove them"
            )


__all__ = ["finalize_request", "install_renewal", "renewal_time"]
