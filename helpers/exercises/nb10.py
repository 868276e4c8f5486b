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
import statistics
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


__all__ = ["finalize_request", "renewal_time"]
