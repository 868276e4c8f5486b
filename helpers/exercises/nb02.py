"""Checks for the exercises of notebook 02 · Validating certificates with requests.

Every check runs the learner's function against the local lab's servers
(:func:`helpers.lab.get_lab`) and compares with what a real handshake decided.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from . import exercise

#: Scenario -> the verify code ``requests`` reports with the lab CA trusted (None: success).
#: no-san is left out on purpose: its answer depends on the client (notebook 02 shows why).
_CODES: dict[str, int | None] = {
    "valid": None,
    "expired": 10,
    "not-yet-valid": 9,
    "self-signed": 18,
    "untrusted-root": 19,
    "incomplete-chain": 20,
    "revoked": None,
    "wrong-host": 62,
    "weak-key": 66,
    "wrong-eku": 26,
}

_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@contextlib.contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables; ``patch.dict`` restores them all."""
    with mock.patch.dict(os.environ):
        for name, value in values.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
        yield


def _ca_count(path: str | os.PathLike[str]) -> int:
    """How many certificates OpenSSL loads from a PEM bundle (raises ssl.SSLError if broken)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=os.fspath(path))
    return int(ctx.cert_store_stats()["x509"])


# ------------------------------------------------------------------ verify_code_of


@exercise(
    "nb02",
    hints=[
        "A failed verification raises requests.exceptions.SSLError; the number you want is "
        "the verify_code of an ssl.SSLCertVerificationError somewhere inside it. Remember to "
        "pass ca_bundle on (verify=...) and a timeout.",
        "The ssl.SSLCertVerificationError is three layers down: error.args[0] is urllib3's "
        "MaxRetryError, its .reason is urllib3's SSLError, whose .args[0] is the ssl exception.",
        "Or walk the chain generically: keep following .reason, .args[0], __cause__ and "
        "__context__ until you meet an exception with a verify_code attribute.",
    ],
)
def verify_code_of(answer):
    import certifi

    from ..lab import get_lab

    lab = get_lab()
    first = answer(lab.url("valid"), str(lab.ca_bundle))
    assert first != 20, (
        "the lab's valid site, with the lab's CA bundle, gave 20 (unable to get local issuer "
        "certificate): your function does not trust ca_bundle. Pass it on: "
        "requests.get(url, verify=ca_bundle, timeout=5)"
    )
    assert first is None, f"the lab's valid site verifies, so return None, not {first!r}"
    got = answer(lab.url("expired"), str(lab.ca_bundle))
    assert got is not None, (
        "the expired site gave None, as if the request had succeeded: did it really verify? "
        "verify=False, or an except that swallows every error, hides exactly the failure "
        "this function must report"
    )
    assert got == 10, f"expired should give verify code 10 (certificate has expired), not {got!r}"
    for scenario, want in _CODES.items():
        got = answer(lab.url(scenario), str(lab.ca_bundle))
        assert got == want, (
            f"{scenario}: requests with the lab CA trusted gives {want!r}, you returned {got!r}"
        )
    got = answer(lab.url("valid"), certifi.where())
    assert got == 20, (
        "valid with certifi's bundle (which does not contain the lab CA) should give 20 "
        f"(unable to get local issuer certificate), not {got!r}: did you pass ca_bundle on?"
    )


# ------------------------------------------------------------------ combined_bundle


@exercise(
    "nb02",
    hints=[
        "A CA bundle is just PEM certificates one after the other: read each file's bytes "
        "and write them all to destination, in order.",
        "Watch the joins: a file that does not end in a newline glues its "
        "'-----END CERTIFICATE-----' to the next '-----BEGIN CERTIFICATE-----' and OpenSSL "
        "stops reading. Add b'\\n' where one is missing.",
        "Return Path(destination), and check your file with "
        "ssl.create_default_context(cafile=...) before you trust it.",
    ],
)
def combined_bundle(answer):
    import certifi
    import requests

    from ..pki import CA

    with tempfile.TemporaryDirectory(prefix="tls-course-nb02-") as tmp:
        # PEM files without their final newline, as some tools write them.
        corporate = Path(tmp, "corporate-ca.pem")
        corporate.write_bytes(CA(common_name="Example Corp Root CA").cert_pem.rstrip(b"\n"))
        partner = Path(tmp, "partner-ca.pem")
        partner.write_bytes(CA(common_name="Example Partner Root CA").cert_pem.rstrip(b"\n"))
        inputs = [corporate, partner, Path(certifi.where())]
        destination = Path(tmp, "out", "bundle.pem")
        destination.parent.mkdir()
        # Yesterday's bundle is still there, with a root nobody asked for any more.
        stale = CA(common_name="Decommissioned Old Root CA")
        destination.write_bytes(stale.cert_pem)
        got = answer(inputs, destination)
        assert got is not None and Path(got) == destination, (
            f"return the path of the bundle you wrote ({destination}), not {got!r}"
        )
        assert destination.exists(), "nothing was written to destination"
        try:
            count = _ca_count(destination)
        except ssl.SSLError as exc:
            raise AssertionError(
                f"OpenSSL cannot read your bundle ({exc.reason or exc}): look at the joins"
            ) from None
        want = sum(_ca_count(path) for path in inputs)
        assert stale.cert_pem.strip() not in destination.read_bytes(), (
            "your bundle still holds 'Decommissioned Old Root CA', which was in the file "
            "before you wrote it: open destination for writing ('wb'), not appending. A root "
            "left over in a trust bundle stays trusted, silently, for as long as the file lives"
        )
        assert count == want, f"your bundle holds {count} certificates, the inputs hold {want}"

        from ..lab import get_lab

        lab = get_lab()
        lab_ca = Path(tmp, "lab-ca.pem")
        lab_ca.write_bytes(lab.ca_bundle.read_bytes().rstrip(b"\n"))
        destination = Path(tmp, "out", "with-lab.pem")
        answer([Path(certifi.where()), lab_ca], destination)
        try:
            requests.get(lab.url("valid"), verify=str(destination), timeout=5).close()
        except requests.exceptions.SSLError as exc:
            raise AssertionError(
                f"requests with certifi + the lab CA bundled by your function failed: {exc}"
            ) from None
        except OSError as exc:  # requests: "Could not find a suitable TLS CA certificate bundle"
            raise AssertionError(f"requests could not use your bundle: {exc}") from None


# ------------------------------------------------------------------ lab_session


def _trusted(session, url: str) -> bool:
    import requests

    try:
        session.get(url, timeout=5).close()
    except requests.exceptions.SSLError:
        return False
    return True


@exercise(
    "nb02",
    hints=[
        "Start with session = requests.Session() and session.verify = str(ca_bundle).",
        "Try it with REQUESTS_CA_BUNDLE set: requests prefers the environment variable to "
        "session.verify (psf/requests issue #3829).",
        "session.trust_env = False makes the session ignore REQUESTS_CA_BUNDLE and "
        "CURL_CA_BUNDLE (and also proxy variables and ~/.netrc).",
    ],
)
def lab_session(answer):
    import certifi
    import requests

    from ..lab import get_lab

    with _environ():  # whatever the answer does to os.environ is undone on the way out
        before = dict(os.environ)
        first = answer(Path(certifi.where()))
        changed = sorted(k for k in {*before, *os.environ} if before.get(k) != os.environ.get(k))
    assert isinstance(first, requests.Session), (
        f"return a requests.Session, not {type(first).__name__}"
    )
    first.close()
    assert not changed, (
        f"your function changed the environment ({', '.join(changed)}): that changes what "
        "every other requests call in the program trusts. Configure the session itself instead"
    )
    lab = get_lab()
    with _environ(REQUESTS_CA_BUNDLE=certifi.where(), CURL_CA_BUNDLE=None):
        with answer(lab.ca_bundle) as session:
            assert _trusted(session, lab.url("valid")), (
                "with REQUESTS_CA_BUNDLE pointing at certifi's bundle, your session did not "
                "trust the lab's valid site: the environment variable won over session.verify"
            )
            assert not _trusted(session, lab.url("expired")), (
                "your session accepted the expired site: it must still verify certificates. "
                "verify=False does not choose whom to trust, it trusts everyone: anyone on the "
                "path could then pose as the server (notebook 07)"
            )
            assert not _trusted(session, lab.url("self-signed")), (
                "your session accepted a self-signed certificate: it must still verify"
            )
    with _environ(**dict.fromkeys(_ENV)):
        with answer(lab.ca_bundle) as session:
            assert _trusted(session, lab.url("valid")), (
                "with no CA environment variables set, your session did not trust the lab"
            )
