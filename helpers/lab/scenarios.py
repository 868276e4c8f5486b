"""The lab's failure scenarios, as data (introduced in notebook 02).

Theory of operation
-------------------
Each :class:`Scenario` is one thing that can go wrong (or deliberately go right) when a
client opens a TLS connection, in the spirit of badssl.com. A scenario is pure data in
three parts:

* **what the learner reads**: ``title``, ``problem`` (what is wrong), ``browser`` (what a
  browser shows), ``badssl`` (the twin on badssl.com, for live mode) and ``fix``;
* **what a default client decides**: ``expect``, an :class:`Expect` for
  ``ssl.create_default_context()``. ``strict`` is the verdict with extra checks switched
  on (``check_flags``, e.g. revocation), and ``tools`` holds the verdicts of ``requests``,
  ``curl`` and ``openssl s_client`` where they differ from Python's. Most verdicts are the
  same on every supported Python and OpenSSL (measured on 3.11 + OpenSSL 3.0 and 3.13 +
  OpenSSL 3.5). The TLS 1.0/1.1 ones are not: they are computed for the running Python
  and the installed tools by :mod:`helpers.lab.legacy`;
* **how the lab builds it**: ``cert`` (a :class:`CertRecipe`: who signs, for which names,
  key type, validity, which chain the server sends) and the server settings
  (``tls_version``, ``dh_bits``, ``needs_client_cert``, ``weak``).

Nothing here touches the network or the disk. :mod:`helpers.lab.build` turns recipes into
certificates, :mod:`helpers.lab.server` turns scenarios into listening sockets.

Verify codes are OpenSSL's ``X509_V_ERR_*`` numbers (``ssl.SSLCertVerificationError
.verify_code``); their meaning comes from RFC 5280 §6 (path validation) plus the policy
checks OpenSSL layers on top (key sizes, digest algorithms, host names per RFC 6125).
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType

from . import legacy
from .expect import OK, Expect
from .expect import _exception_chain as _exception_chain  # re-exported for older imports

#: The DNS suffix of every lab name (RFC 6761 §6.3: ``localhost`` and its subdomains are
#: loopback by definition, so these names can never belong to anybody else).
DOMAIN = "lab.localhost"


def _verify(code: int, message: str) -> Expect:
    return Expect(False, code, message, "SSLCertVerificationError")


def _ssl_error(reason: str, when: str = "handshake") -> Expect:
    return Expect(False, None, reason, "SSLError", when)


@dataclass(frozen=True)
class CertRecipe:
    """How to build a scenario's certificate (read by :mod:`helpers.lab.build`).

    ``issuer``: ``"intermediate"`` (the lab's issuing CA), ``"self"`` (self-signed),
    ``"untrusted"`` (a second root nobody trusts), ``"not-a-ca"`` (a leaf with
    ``CA:FALSE`` that signs anyway). ``validity``: ``"current"``, ``"expired"``,
    ``"future"``. ``chain``: what the server sends: ``"full"`` (leaf + intermediates),
    ``"leaf"`` (leaf only), ``"with-root"`` (leaf + its root).
    ``signature_hash``: ``"sha256"`` or ``"sha1"``. ``defect``: one thing Python 3.13's
    ``VERIFY_X509_STRICT`` refuses and older checks let through (RFC 5280 §4.2.1.1,
    §4.2.1.3, §4.2.1.9): ``"no-aki"`` (the leaf has no authorityKeyIdentifier),
    ``"bc-noncritical"`` (the issuing CA's basicConstraints is not critical),
    ``"ca-no-keyusage"`` (the issuing CA has no keyUsage); ``""`` for none.
    """

    names: tuple[str, ...]
    issuer: str = "intermediate"
    key_type: str = "ec"
    key_size: int | None = None
    validity: str = "current"
    san: bool = True
    usages: tuple[str, ...] = ("server",)
    signature_hash: str = "sha256"
    chain: str = "full"
    defect: str = ""


@dataclass(frozen=True)
class Scenario:
    """One badssl.com-style case: what is wrong, what clients decide, how it is built."""

    name: str
    title: str
    problem: str
    expect: Expect
    browser: str
    badssl: str | None
    cert: CertRecipe
    host: str = ""
    fix: str = ""
    #: Pin the protocol: ``"TLSv1"``, ``"TLSv1_1"``, ``"TLSv1_2"`` (min = max), else ``None``.
    tls_version: str | None = None
    #: The server demands a client certificate (mutual TLS, RFC 8446 §4.3.2).
    needs_client_cert: bool = False
    #: Finite-field Diffie-Hellman group size for a DHE-only TLS 1.2 server (RFC 5246 §8.1.2).
    dh_bits: int | None = None
    #: The server must accept weak material (``@SECLEVEL=0``) to serve this at all.
    weak: bool = False
    #: The server's TLS 1.2 cipher list (OpenSSL names), when it offers only some suites.
    ciphers: str | None = None
    #: Which server plays the scenario: ``"reactor"`` (the lab's HTTP server,
    #: :mod:`helpers.lab.server`), ``"truncating"`` (answers without Content-Length and
    #: hangs up without close_notify, :mod:`helpers.lab.truncating`) or ``"tls12-legacy"``
    #: (a hand-written TLS 1.2 server without RFC 5746, :mod:`helpers.lab.tls12_legacy`).
    server: str = "reactor"
    #: The verdict with ``VERIFY_X509_STRICT`` set on any Python (3.13+ sets it by default),
    #: for the scenarios about it; ``None`` when it is the same as ``expect``.
    x509_strict: Expect | None = None
    #: Extra verification flags (names in :class:`ssl.VerifyFlags`) for ``strict``.
    check_flags: tuple[str, ...] = ()
    #: The verdict with ``check_flags`` set and the lab CRL loaded, if it differs.
    strict: Expect | None = None
    #: Verdicts of other clients where they differ from ``ssl.create_default_context()``:
    #: keys ``"requests"``, ``"curl"``, ``"openssl"`` (``openssl s_client``).
    tools: Mapping[str, Expect] = field(default_factory=dict, hash=False)
    #: Why a browser and Python disagree, or other notes for the teacher.
    note: str = ""

    def __post_init__(self) -> None:
        if not self.host:
            object.__setattr__(self, "host", f"{self.name}.{DOMAIN}")
        if isinstance(
            self.tools, dict
        ):  # a _ToolVerdicts/_Computed computes its values on first use
            object.__setattr__(self, "tools", MappingProxyType(dict(self.tools)))

    def verdict(self, tool: str = "python") -> Expect:
        """The expected verdict of ``"python"`` (the :mod:`ssl` default context),
        ``"requests"``, ``"curl"`` or ``"openssl"``."""
        return self.tools.get(tool, self.expect) if tool != "python" else self.expect

    @property
    def cli(self) -> Expect:
        """What the command-line tools decide: ``openssl s_client -verify_return_error``
        with the system OpenSSL (no strict flag). ``curl`` agrees on ``ok``; where it words
        the failure differently, :meth:`verdict` ``("curl")`` has its text."""
        return self.verdict("openssl")

    @property
    def recipe_fingerprint(self) -> str:
        """A short hash of what goes into the certificate (the cache key)."""
        blob = json.dumps(asdict(self.cert), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _repr_html_(self) -> str:
        e = html.escape
        rows = [
            ("host", f"<code>{e(self.host)}</code>"),
            ("what is wrong", e(self.problem)),
            ("Python (default context)", f"<code>{e(self.expect.describe())}</code>"),
        ]
        if self.strict is not None:
            flags = ", ".join(self.check_flags)
            rows.append((f"with {e(flags)}", f"<code>{e(self.strict.describe())}</code>"))
        if self.x509_strict is not None:
            rows.append(
                ("with VERIFY_X509_STRICT", f"<code>{e(self.x509_strict.describe())}</code>")
            )
        for tool, verdict in self.tools.items():
            rows.append((e(tool), f"<code>{e(verdict.describe())}</code>"))
        rows.append(("a browser shows", e(self.browser)))
        if self.badssl:
            rows.append(("badssl.com twin", f"<code>{e(self.badssl)}</code>"))
        if self.fix:
            rows.append(("the fix", e(self.fix)))
        if self.note:
            rows.append(("note", e(self.note)))
        body = "".join(
            f"<tr><th style='text-align:left;vertical-align:top'>{k}</th>"
            f"<td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        return f"<h4>{e(self.name)}: {e(self.title)}</h4><table>{body}</table>"


def _h(name: str) -> str:
    return f"{name}.{DOMAIN}"


# ``browser=`` texts: what headless Chromium shows with the lab root trusted, measured by
# tests/test_browser_scenarios.py (the ERR_* code, or "the page loads"). Nothing Firefox is
# measured here: a Firefox code is quoted "per Mozilla's documentation".
_BROWSER_OK = (
    "The page loads, no warning, once the lab root is trusted. A root you add yourself is "
    "exempt from rules Chrome applies to public CAs only: Certificate Transparency (SCTs) "
    "and the maximum certificate lifetime."
)


class _ToolVerdicts(Mapping[str, Expect]):
    """The other clients' verdicts on a TLS 1.0/1.1-only server, for this machine.

    ``requests`` is fixed: urllib3 2 sets ``minimum_version = TLSv1_2`` on every Python,
    so the server answers with a ``protocol_version`` alert. ``curl`` and ``openssl``
    depend on the installed tools (:func:`helpers.lab.legacy.tool_verdict`), which are
    asked for their versions only when a verdict is first read, never on import. A tool
    that is missing has no entry.
    """

    def __init__(self, version: str) -> None:
        self._version = version
        self._computed: dict[str, Expect] | None = None

    def _verdicts(self) -> dict[str, Expect]:
        if self._computed is None:
            tls = legacy.TLS_VERSIONS[self._version]
            found = {"requests": legacy.PROTOCOL_VERSION}
            for tool in ("curl", "openssl"):
                verdict = legacy.tool_verdict(tool, tls)
                if verdict is not None:
                    found[tool] = verdict
            self._computed = found
        return self._computed

    def __getitem__(self, key: str) -> Expect:
        if key == "requests":  # no need to ask the tools for this one
            return legacy.PROTOCOL_VERSION
        return self._verdicts()[key]

    def __contains__(self, key: object) -> bool:
        return key == "requests" or key in self._verdicts()

    def __iter__(self) -> Iterator[str]:
        return iter(self._verdicts())

    def __len__(self) -> int:
        return len(self._verdicts())


#: The strict-verification codes (``X509_V_ERR_*``) and messages, measured with OpenSSL
#: 3.0.22 (Python 3.11 + VERIFY_X509_STRICT) and 3.5.9 (Python 3.13's default context).
_STRICT: dict[str, tuple[int, str]] = {
    "no-aki": (85, "Missing Authority Key Identifier"),
    "bc-noncritical": (89, "Basic Constraints of CA cert not marked critical"),
    "ca-no-keyusage": (92, "CA cert does not include key usage extension"),
}
_STRICT_NOTE = (
    "Python 3.13 added VERIFY_X509_STRICT (and VERIFY_X509_PARTIAL_CHAIN) to "
    "ssl.create_default_context(); urllib3 2.3+ does the same on 3.13, so requests follows "
    "the running Python. curl and openssl s_client do not set the strict flag: they accept "
    "the chain on every version (openssl verify -x509_strict shows the refusal). Chromium "
    "accepts it too."
)


def _strict(defect: str, *, title: str, problem: str, fix: str) -> Scenario:
    """``strict-<defect>``: a chain that breaks one "MUST" of the RFC 5280 profile
    (:data:`_STRICT`), which Python 3.13's default context refuses and Python 3.11/3.12,
    curl, openssl s_client and browsers accept (notebook 09)."""
    name = f"strict-{defect}"
    return Scenario(
        name=name,
        title=title,
        problem=problem,
        expect=legacy.strict_verdict(*_STRICT[defect]),
        x509_strict=_verify(*_STRICT[defect]),
        browser=_BROWSER_OK,
        badssl=None,
        cert=CertRecipe(names=(_h(name),), defect=defect),
        tools={"curl": OK, "openssl": OK},
        fix=fix,
        note=_STRICT_NOTE,
    )


#: The static-RSA suites of the ``rsa-kx-only`` server (RSA key transport, RFC 5246 §7.4.7.1).
RSA_KX_SUITES = "AES128-GCM-SHA256:AES256-GCM-SHA384"
_RSA_KX_BROWSER = (
    "The page loads (measured with Chromium 156, no warning): Chromium still offers RSA "
    "key transport in TLS 1.2."
)


class _Computed(Mapping[str, Expect]):
    """Tool verdicts computed on first use by ``compute()`` (never on import)."""

    def __init__(self, compute: Callable[[], dict[str, Expect]]) -> None:
        self._compute = compute
        self._computed: dict[str, Expect] | None = None

    def _verdicts(self) -> dict[str, Expect]:
        if self._computed is None:
            self._computed = self._compute()
        return self._computed

    def __getitem__(self, key: str) -> Expect:
        return self._verdicts()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._verdicts())

    def __len__(self) -> int:
        return len(self._verdicts())


def _rsa_kx_tools() -> dict[str, Expect]:
    verdict = legacy.tool_rsa_kx_verdict(RSA_KX_SUITES)
    return {} if verdict is None else {"curl": verdict, "openssl": verdict}


_RENEGOTIATION_BROWSER = (
    "The page loads (measured with Chromium 156): Chromium's TLS library accepts a first "
    "handshake without renegotiation_info, where OpenSSL 3 clients refuse it."
)
_TRUNCATION_BROWSER = (
    "The page loads, no warning (measured with Chromium 156): the browser shows what "
    "arrived, as requests does."
)


def _truncation_tools() -> dict[str, Expect]:
    found = {}
    for tool in ("curl", "openssl"):
        verdict = legacy.tool_truncation_verdict(tool)
        if verdict is not None:
            found[tool] = verdict
    return found


_TRUNCATION_NOTE = (
    "Measured on Python 3.11 + OpenSSL 3.0.22 and 3.13 + OpenSSL 3.5.9: "
    "ssl.create_default_context() with wrap_socket (suppress_ragged_eofs=True, the "
    "default), http.client, urllib, requests, httpx and aiohttp all return the body with "
    "no error: the missing close_notify is an ordinary end of file to them, so a "
    "truncated body looks complete. An SSLSocket made with suppress_ragged_eofs=False "
    "raises SSLEOFError ('[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of "
    "protocol') on the read that meets the end. openssl s_client prints the body, then "
    "'unexpected eof while reading', and exits 1. curl 8.14.1 (OpenSSL 3.5) fails with "
    "error 56 after the body; curl 7.88.1 (OpenSSL 3.0) accepts it."
)


_LIST: tuple[Scenario, ...] = (
    Scenario(
        name="valid",
        title="A correct certificate",
        problem="Nothing: a P-256 leaf for this name, signed by the lab intermediate, full chain sent.",
        expect=OK,
        browser=_BROWSER_OK,
        badssl="badssl.com",
        cert=CertRecipe(names=(_h("valid"),)),
        fix="Nothing to fix. Compare every other scenario with this one.",
    ),
    Scenario(
        name="wildcard",
        title="A wildcard certificate",
        problem=(
            "Nothing: the certificate names *.wildcard.lab.localhost, which covers exactly "
            "one extra label (RFC 6125 §6.4.3), so www.wildcard.lab.localhost matches."
        ),
        expect=OK,
        browser=_BROWSER_OK,
        badssl="badssl.com",
        host=f"www.wildcard.{DOMAIN}",
        cert=CertRecipe(names=(f"*.wildcard.{DOMAIN}",)),
        note="wildcard.lab.localhost itself and a.b.wildcard.lab.localhost would NOT match.",
    ),
    Scenario(
        name="ip-san",
        title="A certificate for an IP address",
        problem=(
            "Nothing: the certificate carries an iPAddress subjectAltName 127.0.0.1 "
            "(RFC 5280 §4.2.1.6), so https://127.0.0.1 verifies without any name."
        ),
        expect=OK,
        browser=_BROWSER_OK,
        badssl=None,
        host="127.0.0.1",
        cert=CertRecipe(names=("127.0.0.1",)),
        note="No SNI is sent for an IP address (RFC 6066 §3 allows host names only).",
    ),
    Scenario(
        name="no-san",
        title="Common Name only, no subjectAltName",
        problem=(
            "The name is only in the subject's Common Name. RFC 6125 §6.4.4 deprecated the "
            "CN fallback and the CA/Browser Forum requires subjectAltName."
        ),
        expect=OK,
        browser=(
            "NET::ERR_CERT_COMMON_NAME_INVALID, whatever the root: Chrome has ignored the "
            "Common Name since Chrome 58. Python's ssl (OpenSSL) still falls back to it."
        ),
        badssl=None,
        cert=CertRecipe(names=(_h("no-san"),), san=False),
        tools={"requests": _verify(62, "Hostname mismatch")},
        fix="Put every name in subjectAltName.",
        note=(
            "ssl.create_default_context() says OK (hostname_checks_common_name is True), "
            "and so do curl and openssl s_client. requests refuses: urllib3 2 sets "
            "hostname_checks_common_name = False, like the browsers. The client's policy, "
            "not the certificate, decides."
        ),
    ),
    Scenario(
        name="expired",
        title="Expired certificate",
        problem="notAfter is in the past (RFC 5280 §4.1.2.5, checked in §6.1.3).",
        expect=_verify(10, "certificate has expired"),
        browser=(
            "NET::ERR_CERT_DATE_INVALID (Firefox, per Mozilla's documentation: "
            "SEC_ERROR_EXPIRED_CERTIFICATE)."
        ),
        badssl="expired.badssl.com",
        cert=CertRecipe(names=(_h("expired"),), validity="expired"),
        fix="Renew the certificate, and automate renewal (ACME, RFC 8555).",
    ),
    Scenario(
        name="not-yet-valid",
        title="Certificate not valid yet",
        problem="notBefore is in the future: usually a client or server clock that is wrong.",
        expect=_verify(9, "certificate is not yet valid"),
        browser="NET::ERR_CERT_DATE_INVALID, the same code as an expired certificate: check the clock.",
        badssl=None,
        cert=CertRecipe(names=(_h("not-yet-valid"),), validity="future"),
        fix="Check the clocks (NTP) on both sides before anything else.",
    ),
    Scenario(
        name="self-signed",
        title="Self-signed certificate",
        problem="The certificate signs itself; no trusted CA vouches for it.",
        expect=_verify(18, "self-signed certificate"),
        browser=(
            "NET::ERR_CERT_AUTHORITY_INVALID (Firefox, per Mozilla's documentation: "
            "MOZILLA_PKIX_ERROR_SELF_SIGNED_CERT)."
        ),
        badssl="self-signed.badssl.com",
        cert=CertRecipe(names=(_h("self-signed"),), issuer="self"),
        fix="Get it signed by a CA the clients trust, or pin it deliberately (cafile=).",
    ),
    Scenario(
        name="untrusted-root",
        title="Chain to a root nobody trusts",
        problem=(
            "The server sends its leaf and its own root CA. Sending a root proves nothing: "
            "trust anchors come from the client's store (RFC 5280 §6.1.1 (d))."
        ),
        expect=_verify(19, "self-signed certificate in certificate chain"),
        browser=(
            "NET::ERR_CERT_AUTHORITY_INVALID (Firefox, per Mozilla's documentation: "
            "SEC_ERROR_UNKNOWN_ISSUER)."
        ),
        badssl="untrusted-root.badssl.com",
        cert=CertRecipe(names=(_h("untrusted-root"),), issuer="untrusted", chain="with-root"),
        fix="Use a CA the clients trust, or add this root to the clients that should trust it.",
    ),
    Scenario(
        name="incomplete-chain",
        title="Missing intermediate certificate",
        problem=(
            "The server sends only its leaf, not the intermediate that signed it. TLS says "
            "the server sends the chain (RFC 8446 §4.4.2); the client cannot finish the path."
        ),
        expect=_verify(20, "unable to get local issuer certificate"),
        browser=(
            "NET::ERR_CERT_AUTHORITY_INVALID here: lab certificates carry no AIA URL to fetch "
            "the intermediate from. A public site with this fault often works in browsers "
            "(Chrome fetches the AIA URL; Firefox, per Mozilla's documentation, preloads public "
            "CAs' intermediates) and still fails in Python."
        ),
        badssl="incomplete-chain.badssl.com",
        cert=CertRecipe(names=(_h("incomplete-chain"),), chain="leaf"),
        fix="Configure the server with the full chain file (leaf + intermediates).",
    ),
    Scenario(
        name="wrong-host",
        title="Certificate for another name",
        problem=(
            "The chain is fine but the certificate names someone-else.lab.localhost, not "
            "this host (RFC 6125 §6; RFC 2818 §3.1)."
        ),
        expect=_verify(62, "Hostname mismatch"),
        browser=(
            "NET::ERR_CERT_COMMON_NAME_INVALID (Firefox, per Mozilla's documentation: "
            "SSL_ERROR_BAD_CERT_DOMAIN)."
        ),
        badssl="wrong.host.badssl.com",
        cert=CertRecipe(names=(_h("someone-else"),)),
        tools={"curl": Expect(False, None, "no alternative certificate subject name matches")},
        note="curl checks the name itself and words it differently; openssl s_client says 62.",
        fix="Issue the certificate for every name clients use (all of them in subjectAltName).",
    ),
    Scenario(
        name="revoked",
        title="Revoked certificate",
        problem=(
            "The issuing CA has revoked this certificate and lists its serial in its CRL "
            "(RFC 5280 §5). Nothing in the handshake says so: a client must go and look."
        ),
        expect=OK,
        check_flags=("VERIFY_CRL_CHECK_LEAF",),
        strict=_verify(23, "certificate revoked"),
        browser=(
            "The page loads: Chrome neither downloads CRLs nor asks OCSP by default. Its "
            "CRLSets, like Firefox's CRLite, carry revocations of public CAs only, never of a "
            "root you added yourself."
        ),
        badssl="revoked.badssl.com",
        cert=CertRecipe(names=(_h("revoked"),)),
        fix="Clients: load the CRL and set VERIFY_CRL_CHECK_LEAF. Servers: get a new certificate.",
        note="Python passes by default: revocation is only checked when you ask for it.",
    ),
    Scenario(
        name="weak-key",
        title="1024-bit RSA key",
        problem=(
            "The leaf's RSA key has 1024 bits (about 80-bit security, factorable by a "
            "well-funded attacker). OpenSSL security level 2 wants 2048."
        ),
        expect=_verify(66, "EE certificate key too weak"),
        browser=(
            "The page loads: Chromium refuses RSA keys under 1024 bits only, whatever the "
            "root. Only a private CA issues such a key: public CAs must use 2048 bits or more "
            "(CA/Browser Forum Baseline Requirements)."
        ),
        badssl=None,
        cert=CertRecipe(names=(_h("weak-key"),), key_type="rsa", key_size=1024),
        weak=True,
        fix="Use P-256 or RSA-2048 or larger.",
    ),
    Scenario(
        name="sha1",
        title="Signed with SHA-1",
        problem=(
            "The CA signed the leaf with ecdsa-with-SHA1. SHA-1 collisions are practical "
            "(SHAttered 2017, chosen-prefix 2020), so a signature over SHA-1 can be forged."
        ),
        expect=_verify(68, "CA signature digest algorithm too weak"),
        browser=(
            "NET::ERR_CERT_INVALID, whatever the root: Chromium no longer accepts SHA-1 "
            "certificate signatures at all."
        ),
        badssl="sha1-intermediate.badssl.com",
        cert=CertRecipe(names=(_h("sha1"),), signature_hash="sha1"),
        weak=True,
        fix="Re-issue with SHA-256.",
        note=(
            "cryptography refuses to build SHA-1 certificates, so the lab builds the "
            "TBSCertificate with SHA-256, rewrites its signature AlgorithmIdentifier to "
            "ecdsa-with-SHA1 and signs those bytes with the CA key (RFC 5280 §4.1.1.2)."
        ),
    ),
    Scenario(
        name="bad-issuer",
        title="Signed by a certificate that is not a CA",
        problem=(
            "The leaf was signed by another leaf whose basicConstraints say CA:FALSE. "
            "Only CA certificates may sign (RFC 5280 §4.2.1.9, §6.1.4 (k))."
        ),
        expect=_verify(79, "invalid CA certificate"),
        browser="NET::ERR_CERT_INVALID: Chromium's catch-all for a chain that breaks a rule of RFC 5280.",
        badssl=None,
        cert=CertRecipe(names=(_h("bad-issuer"),), issuer="not-a-ca"),
        fix="Only ever sign with a CA certificate; never hand a server certificate's key to a CA tool.",
    ),
    Scenario(
        name="wrong-eku",
        title="Certificate for clients, not servers",
        problem=(
            "extendedKeyUsage lists clientAuth only, so the certificate may not identify a "
            "TLS server (RFC 5280 §4.2.1.12)."
        ),
        expect=_verify(26, "unsuitable certificate purpose"),
        browser="NET::ERR_CERT_INVALID, the same catch-all code as bad-issuer and sha1.",
        badssl=None,
        cert=CertRecipe(names=(_h("wrong-eku"),), usages=("client",)),
        fix="Issue server certificates with extendedKeyUsage serverAuth.",
    ),
    Scenario(
        name="client-cert-required",
        title="The server wants a client certificate (mTLS)",
        problem=(
            "The server sends CertificateRequest (RFC 8446 §4.3.2) and refuses clients that "
            "answer with no certificate. Nothing is wrong with the server's certificate."
        ),
        expect=_ssl_error("tlsv13 alert certificate required", when="read"),
        browser=(
            "ERR_BAD_SSL_CLIENT_AUTH_CERT when the browser has no certificate to send; on "
            "loopback sometimes ERR_SOCKET_NOT_CONNECTED, when the server's alert arrives before "
            "Chromium has sent its request. A browser holding client certificates first asks "
            "which one to send."
        ),
        badssl="client-cert-missing.badssl.com",
        cert=CertRecipe(names=(_h("client-cert-required"),)),
        needs_client_cert=True,
        fix="Present the lab's client certificate: ctx.load_cert_chain(*lab.client_cert), "
        "requests.get(url, cert=lab.client_cert).",
        note=(
            "In TLS 1.3 the client's handshake completes before the server has checked the "
            "client, so the failure arrives as an alert on the first read (RFC 8446 §4.4.2.4). "
            "The lab's server half-closes and lingers after sending the alert, so you always "
            "read it. A server that just closes resets the connection while the client is "
            "still sending, and the alert can be lost: Python 3.13+ then raises "
            "ConnectionResetError, 3.11 and 3.12 SSLEOFError."
        ),
    ),
    Scenario(
        name="tls-1.0-only",
        title="TLS 1.0 only",
        problem="The server speaks TLS 1.0 only, deprecated by RFC 8996 (2021).",
        expect=legacy.python_verdict(legacy.TLS_VERSIONS["TLSv1"]),
        browser="ERR_SSL_VERSION_OR_CIPHER_MISMATCH: Chromium offers TLS 1.2 and 1.3 only.",
        badssl="tls-v1-0.badssl.com:1010",
        cert=CertRecipe(names=(_h("tls-1.0-only"),)),
        tls_version="TLSv1",
        weak=True,
        tools=_ToolVerdicts("TLSv1"),
        note=legacy.NOTE,
        fix="Enable TLS 1.2 and 1.3 on the server (RFC 8996 §2).",
    ),
    Scenario(
        name="tls-1.1-only",
        title="TLS 1.1 only",
        problem="The server speaks TLS 1.1 only, deprecated by RFC 8996 (2021).",
        expect=legacy.python_verdict(legacy.TLS_VERSIONS["TLSv1_1"]),
        browser="ERR_SSL_VERSION_OR_CIPHER_MISMATCH: Chromium offers TLS 1.2 and 1.3 only.",
        badssl="tls-v1-1.badssl.com:1011",
        cert=CertRecipe(names=(_h("tls-1.1-only"),)),
        tls_version="TLSv1_1",
        weak=True,
        tools=_ToolVerdicts("TLSv1_1"),
        note=legacy.NOTE,
        fix="Enable TLS 1.2 and 1.3 on the server (RFC 8996 §3).",
    ),
    Scenario(
        name="tls-1.2-only",
        title="TLS 1.2 only",
        problem="Nothing wrong: TLS 1.2 (RFC 5246) is still fine, but TLS 1.3 is not offered.",
        expect=OK,
        browser=_BROWSER_OK,
        badssl="tls-v1-2.badssl.com:1012",
        cert=CertRecipe(names=(_h("tls-1.2-only"),)),
        tls_version="TLSv1_2",
        note="ssl_socket.version() returns 'TLSv1.2'.",
    ),
    Scenario(
        name="dh-1024",
        title="1024-bit Diffie-Hellman (TLS 1.2, DHE only)",
        problem=(
            "The server offers only DHE key exchange with a 1024-bit group (RFC 2409 Oakley "
            "group 2), within reach of precomputation (Logjam, 2015)."
        ),
        expect=_ssl_error("dh key too small"),
        browser=(
            "ERR_SSL_VERSION_OR_CIPHER_MISMATCH: Chromium offers no DHE cipher suites, so a "
            "DHE-only server has nothing in common with it, whatever the group size."
        ),
        badssl="dh1024.badssl.com",
        cert=CertRecipe(names=(_h("dh-1024"),), key_type="rsa", key_size=2048),
        tls_version="TLSv1_2",
        dh_bits=1024,
        weak=True,
        fix="Use ECDHE (or TLS 1.3, RFC 8446 §4.2.7); if DHE must stay, use RFC 7919 groups of 2048+ bits.",
    ),
    # --- issue 14, notebook 09: Python 3.13's strict verification. Each chain is fine by
    # RFC 5280 path validation and breaks one "MUST" of the certificate profile that
    # OpenSSL checks only under X509_V_FLAG_X509_STRICT (measured: OpenSSL 3.0.22 and 3.5.9
    # give the same codes once the flag is set).
    _strict(
        "no-aki",
        title="Leaf without authorityKeyIdentifier (Python 3.13 strict)",
        problem=(
            "The leaf has no authorityKeyIdentifier, which RFC 5280 §4.2.1.1 says every "
            "certificate a conforming CA issues MUST carry. Path validation does not need "
            "it, so Python 3.11/3.12, curl and openssl s_client accept the chain; Python "
            "3.13's create_default_context() sets VERIFY_X509_STRICT and refuses it."
        ),
        fix=(
            "Your CA: re-issue with authorityKeyIdentifier (check with openssl verify "
            "-x509_strict). A server you cannot fix: a context without VERIFY_X509_STRICT "
            "for that host only (ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT): a downgrade."
        ),
    ),
    _strict(
        "bc-noncritical",
        title="CA whose basicConstraints is not critical (Python 3.13 strict)",
        problem=(
            "The intermediate CA that signed the leaf carries basicConstraints CA:TRUE, "
            "but not marked critical: RFC 5280 §4.2.1.9 says a CA certificate MUST mark it "
            "critical. Python 3.11/3.12, curl and openssl s_client accept the chain; "
            "Python 3.13's default context (VERIFY_X509_STRICT) refuses it."
        ),
        fix=(
            "Your CA: re-issue the CA certificate with a critical basicConstraints (the "
            "leaves can stay). A server you cannot fix: a context without "
            "VERIFY_X509_STRICT for that host only: a downgrade."
        ),
    ),
    _strict(
        "ca-no-keyusage",
        title="CA without keyUsage (Python 3.13 strict)",
        problem=(
            "The intermediate CA that signed the leaf has no keyUsage extension; RFC 5280 "
            "§4.2.1.3 says a CA certificate whose key signs certificates MUST carry it "
            "(keyCertSign). Python 3.11/3.12, curl and openssl s_client accept the chain; "
            "Python 3.13's default context (VERIFY_X509_STRICT) refuses it."
        ),
        fix=(
            "Your CA: re-issue the CA certificate with keyUsage keyCertSign, cRLSign. A "
            "server you cannot fix: a context without VERIFY_X509_STRICT for that host "
            "only: a downgrade."
        ),
    ),
    # --- issue 14, notebook 09: legacy servers you cannot fix.
    Scenario(
        name="rsa-kx-only",
        title="RSA key transport only (TLS 1.2, no forward secrecy)",
        problem=(
            "The server speaks TLS 1.2 only and offers only static-RSA suites "
            "(AES128-GCM-SHA256, AES256-GCM-SHA384): the client encrypts the premaster "
            "secret to the server's RSA key (RFC 5246 §7.4.7.1), so whoever gets that key "
            "later decrypts every recorded session. TLS 1.3 removed it (RFC 8446 §1.2)."
        ),
        expect=legacy.rsa_kx_verdict(RSA_KX_SUITES),
        browser=_RSA_KX_BROWSER,
        badssl="static-rsa.badssl.com",
        cert=CertRecipe(names=(_h("rsa-kx-only"),), key_type="rsa", key_size=2048),
        tls_version="TLSv1_2",
        ciphers=RSA_KX_SUITES,
        tools=_Computed(_rsa_kx_tools),
        fix=(
            "Server: enable ECDHE suites and TLS 1.3. A server you cannot fix: one suite "
            "for that host only, ctx.set_ciphers('AES128-GCM-SHA256') on a TLS 1.2 "
            "context, knowing the session has no forward secrecy."
        ),
        note=(
            "python.org, pyenv and conda Pythons offer forward-secret suites only, so the "
            "server finds nothing in common: 'sslv3 alert handshake failure'. Debian and "
            "Ubuntu Pythons keep OpenSSL's DEFAULT list, which still has RSA key transport "
            "(OpenSSL 3.0 and 3.5): they connect, and so do curl and openssl s_client. "
            "requests follows the running Python (urllib3 2 keeps the context's list). "
            "Measured: python.org-style 3.11 + OpenSSL 3.0 refuses, Debian 13's 3.13 + "
            "OpenSSL 3.5 connects with AES128-GCM-SHA256."
        ),
    ),
    Scenario(
        name="legacy-renegotiation",
        title="No secure renegotiation (RFC 5746 missing)",
        problem=(
            "A TLS 1.2 server from before 2010: its ServerHello has no renegotiation_info "
            "extension (RFC 5746 §3.6), so the client cannot know whether the server is "
            "open to the 2009 renegotiation attack (CVE-2009-3555). OpenSSL 3 clients hang "
            "up right after the ServerHello."
        ),
        expect=legacy.renegotiation_verdict(),
        browser=_RENEGOTIATION_BROWSER,
        badssl=None,
        cert=CertRecipe(names=(_h("legacy-renegotiation"),)),
        tls_version="TLSv1_2",
        server="tls12-legacy",
        tools={"curl": legacy.UNSAFE_RENEGOTIATION, "openssl": legacy.UNSAFE_RENEGOTIATION},
        fix=(
            "Server: any TLS library from after 2010 speaks RFC 5746. A server you cannot "
            "fix: ctx.options |= ssl.OP_LEGACY_SERVER_CONNECT (0x4 before Python 3.12) on a "
            "context for that host only; curl has no switch for it, openssl s_client "
            "-legacy_server_connect."
        ),
        note=(
            "OpenSSL 3.0 turned SSL_OP_LEGACY_SERVER_CONNECT off by default (1.1.1 had it on), "
            "so every Python on OpenSSL 3 refuses, unless openssl.cnf says Options = "
            "UnsafeLegacyServerConnect (the verdict here reads the running Python's context, "
            "configuration included). The server is helpers/lab/tls12_legacy.py: OpenSSL "
            "itself always answers RFC 5746, so the lab speaks TLS 1.2 by hand there."
        ),
    ),
    Scenario(
        name="truncation",
        title="Hangs up without close_notify (truncation)",
        problem=(
            "The server answers without Content-Length, so the body ends where the "
            "connection ends, and then closes TCP without the close_notify alert (RFC 8446 "
            "§6.1). The client cannot tell the real end from an attacker cutting the page "
            "short: OpenSSL 3 calls it UNEXPECTED_EOF_WHILE_READING."
        ),
        expect=OK,
        browser=_TRUNCATION_BROWSER,
        badssl=None,
        cert=CertRecipe(names=(_h("truncation"),)),
        server="truncating",
        tools=_Computed(_truncation_tools),
        fix=(
            "Server: send close_notify (or a Content-Length) before closing. Client: treat "
            "an EOF without close_notify as an error where completeness matters (an "
            "SSLSocket with suppress_ragged_eofs=False raises SSLEOFError), and check the "
            "length or a checksum of what you download."
        ),
        note=_TRUNCATION_NOTE,
    ),
)

#: Every scenario by name, in teaching order (read-only).
SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _LIST})


def recipes_fingerprint(scenarios: Mapping[str, Scenario] = SCENARIOS) -> str:
    """Hash of every certificate recipe: when it changes, the cache is rebuilt."""
    blob = json.dumps({n: asdict(s.cert) for n, s in scenarios.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
