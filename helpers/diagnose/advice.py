"""Every kind of TLS failure, in plain English, with its fix: :data:`ADVICE` (notebook 02).

Each key is a short **kind** (``"expired"``, ``"unknown-issuer"``, ``"not-tls"``) and each
value an :class:`Advice`: what the failure means, with the RFC section that makes it a
failure, and what a learner or an admin should do. The table follows the ladder of
:mod:`helpers.diagnose` from the top down: the certificate chain (rung 5, RFC 5280 §6.1),
then the handshake (rung 4, RFC 8446 §4 and its alerts, §6.2), then name, TCP and records
(rungs 1-3). Only text lives here: :mod:`.classify` decides which kind an exception is, and
:class:`~.result.Diagnosis` shows the entry for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class Advice(NamedTuple):
    """What a kind of failure means, and what to do about it."""

    explanation: str
    fix: str


#: Every kind :func:`check` and :func:`explain` can report, with a plain-English
#: explanation and a fix. Read it top to bottom: it is a tour of what goes wrong in TLS.
ADVICE: Mapping[str, Advice] = {
    "ok": Advice(
        "The handshake completed: the server proved it holds the private key of a "
        "certificate that chains to a root in your trust store, that is within its "
        "validity period and that names the host you asked for (RFC 8446 §4.4.2-4.4.4, "
        "RFC 5280 §6.1).",
        "Nothing to fix.",
    ),
    # ---- rung 5: the certificate chain (RFC 5280 §6.1 path validation)
    "expired": Advice(
        "A certificate in the chain is past its notAfter date. Every certificate carries a "
        "validity period (RFC 5280 §4.1.2.5) and path validation rejects one outside it "
        "(§6.1.3 (a)(2)): after that date its key may be retired, stolen or no longer watched.",
        "Admin: renew the certificate, reload the server and automate renewal (ACME, "
        "RFC 8555). Learner: check that this machine's clock and date are right.",
    ),
    "not-yet-valid": Advice(
        "A certificate's notBefore date is still in the future (RFC 5280 §4.1.2.5). Almost "
        "always a clock is wrong: the client's, or the CA's when it issued the certificate.",
        "Check the clocks on both machines (NTP). Admin: issue certificates with a notBefore "
        "slightly in the past, as CAs do.",
    ),
    "hostname-mismatch": Advice(
        "The certificate was issued for other names. The client compares the host in the "
        "URL with the certificate's subjectAltName entries (RFC 5280 §4.2.1.6; matching "
        "rules in RFC 9525 §6, which replaced RFC 6125 in 2023, and RFC 9110 §4.3.4); a "
        "certificate for another name proves nothing about this one.",
        "Learner: use exactly a name the certificate lists (see the chain below). Admin: "
        "reissue the certificate with every name clients use in subjectAltName, or serve "
        "the right certificate for this name (SNI, RFC 6066 §3).",
    ),
    "self-signed": Advice(
        "The server sent a certificate that signs itself and is not in your trust store. "
        "Anyone can make one for any name, so it proves nothing: a path must end at a trust "
        "anchor you chose beforehand (RFC 5280 §6.1.1 (d)).",
        "Admin: get a certificate from a CA your clients trust (for a public site, an ACME "
        "CA). For your own test server, trust that one certificate explicitly "
        "(cafile=its PEM file); never switch verification off.",
    ),
    "untrusted-root": Advice(
        "The chain ends at a root CA that is not in your trust store. The server even sent "
        "the root, but sending a root proves nothing: trust anchors come from the client's "
        "own store (RFC 5280 §6.1.1 (d)). If every HTTPS site fails like this at work, a "
        "TLS-inspecting proxy is re-signing them with the company's own root (notebook 09).",
        "If the CA is one you should trust (your company's or the lab's), pass its "
        "certificate as cafile= (requests: verify='ca.pem' or REQUESTS_CA_BUNDLE). "
        "Otherwise the server needs a certificate from a CA its clients trust.",
    ),
    "unknown-issuer": Advice(
        "Your client cannot find the certificate of the CA that signed the top certificate "
        "the server sent, neither in what the server sent nor in its trust store, so it "
        "cannot build a path (RFC 5280 §6.1). Most often the server left out its "
        "intermediate certificate: TLS says the server sends its chain (RFC 8446 §4.4.2), "
        "and browsers hide the mistake by fetching or remembering intermediates, while "
        "Python, curl and most APIs do not. Less often the issuer is a CA you do not trust: "
        "if every HTTPS site fails like this at work, a TLS-inspecting proxy is re-signing "
        "them with the company's inspection CA (notebook 09).",
        "Look at the chain below. Admin: configure the server with the full chain "
        "(leaf, then intermediates: fullchain.pem) and test with check() or "
        "`openssl s_client -showcerts`. If the issuer is a private CA you should trust, "
        "pass its root as cafile=.",
    ),
    "revoked": Advice(
        "The CA has revoked this certificate: its serial number is on the CA's certificate "
        "revocation list (RFC 5280 §5.3.1 reasons, §6.3 CRL processing). Its key may have "
        "leaked, or it was replaced. Python only finds this out when it is given the CRL.",
        "Admin: install a new certificate with a new key. Clients should keep checking "
        "revocation, not stop.",
    ),
    "crl-problem": Advice(
        "Revocation checking was switched on, but there is no usable CRL for this "
        "certificate's issuer: none was loaded, or it has expired (RFC 5280 §5.1.2.5 "
        "nextUpdate), so the client cannot tell whether the certificate is revoked.",
        "Load a current CRL issued by the CA that issued the server's certificate (crl=...).",
    ),
    "weak-key": Advice(
        "A certificate's public key is too small for your client's security policy. Python's "
        "default context runs OpenSSL at security level 2 (set by Python itself, or by the "
        "OpenSSL configuration on Debian/Ubuntu builds), which wants RSA keys of at least 2048 bits "
        "(112-bit security, NIST SP 800-57); a 1024-bit RSA key is within reach of a "
        "well-funded attacker.",
        "Admin: issue a new certificate with an ECDSA P-256 or an RSA-2048 (or larger) key.",
    ),
    "weak-signature": Advice(
        "A certificate in the chain is signed over a broken hash, such as SHA-1 (practical "
        "collisions since 2017, chosen-prefix since 2020) or MD5. A signature over a "
        "colliding hash can be transplanted onto a forged certificate, so OpenSSL refuses "
        "it at security level 1 and above (RFC 9155 deprecates SHA-1 in TLS signatures).",
        "Admin: reissue the certificate (and any intermediate) signed with SHA-256 or better.",
    ),
    "bad-signature": Advice(
        "A signature in the chain does not verify: the certificate was altered, or the "
        "certificate that claims to be its issuer has a different key (RFC 5280 §6.1.3 "
        "(a)(1)).",
        "Admin: check that the chain file holds the intermediate that really issued the "
        "leaf, and reissue if the certificate was damaged.",
    ),
    "invalid-ca": Advice(
        "A certificate in the chain signed another certificate without being allowed to: "
        "it lacks basicConstraints cA=TRUE or the keyCertSign key usage, or a path-length "
        "limit was exceeded (RFC 5280 §4.2.1.9, §4.2.1.3, §6.1.4 (k)-(n)). Otherwise any "
        "site's certificate could mint certificates for every other site.",
        "Admin: get the certificate from a real CA; a leaf's key must never be used to sign "
        "certificates.",
    ),
    "wrong-purpose": Advice(
        "The certificate may not identify a TLS server: its extendedKeyUsage does not "
        "include serverAuth (RFC 5280 §4.2.1.12), for example a client or e-mail "
        "certificate.",
        "Admin: issue a server certificate whose extendedKeyUsage includes serverAuth.",
    ),
    "nonconforming": Advice(
        "A certificate breaks an RFC 5280 profile rule that strict verification enforces "
        "(missing key identifiers, a non-critical basicConstraints on a CA, an empty "
        "subjectAltName ...). Python 3.13 turns this on by default (VERIFY_X509_STRICT).",
        "Admin: reissue the certificate with a conforming profile (any current CA or "
        "helpers.pki does this).",
    ),
    "certificate-invalid": Advice(
        "Certificate path validation failed for a reason not covered by the other kinds "
        "(RFC 5280 §6.1); the raw message below names it.",
        "Read the raw OpenSSL message and the chain below; `openssl verify -show_chain` "
        "gives the same verdict with more detail.",
    ),
    # ---- rung 4: the handshake (RFC 8446 §4, alerts §6.2)
    "client-cert-required": Advice(
        "The server asks the client to prove who it is with a certificate (mutual TLS: "
        "CertificateRequest, RFC 8446 §4.3.2) and you sent none. Under TLS 1.3 the client "
        "finishes its side of the handshake first, so the refusal (alert "
        "certificate_required, §6.2) only shows up on the first read.",
        "Present a client certificate the server's CA issued: client_cert=(cert, key) here, "
        "cert=(cert, key) in requests, ctx.load_cert_chain(cert, key) with ssl.",
    ),
    "client-cert-rejected": Advice(
        "The server did not accept the client certificate you sent: it does not know its "
        "CA, or the certificate is expired, revoked or not meant for clients (alerts "
        "bad_certificate, unknown_ca, certificate_expired; RFC 8446 §6.2).",
        "Use a client certificate issued by the CA the server trusts, valid today, with "
        "extendedKeyUsage clientAuth.",
    ),
    "protocol-version": Advice(
        "Client and server have no TLS version in common (alert protocol_version, "
        "RFC 8446 §6.2). Usually the server offers only TLS 1.0 or 1.1, which RFC 8996 "
        "(2021) deprecated. A python.org Python sets minimum_version to TLS 1.2; a Debian "
        "or Ubuntu Python leaves OpenSSL's minimum, and OpenSSL 3.1+ still refuses TLS "
        "1.0/1.1 above security level 0. Only OpenSSL 3.0 with a TLS 1.0 minimum gets as "
        "far as agreeing on TLS 1.0, then refuses the server's MD5-SHA1/SHA-1 signature "
        "('legacy sigalg disallowed or unsupported').",
        "Admin: enable TLS 1.2 and 1.3 on the server. Do not lower the client's minimum "
        "version to get through.",
    ),
    "weak-dh": Advice(
        "The server chose a finite-field Diffie-Hellman key exchange with a group of 1024 "
        "bits or fewer, which precomputation breaks (Logjam, 2015), so your client refused "
        "it (OpenSSL: dh key too small).",
        "Admin: prefer ECDHE (X25519, P-256) or TLS 1.3; if DHE must stay, use the RFC 7919 "
        "groups of 2048 bits or more.",
    ),
    "handshake-failure": Advice(
        "The handshake was aborted (alert handshake_failure or similar, RFC 8446 §6.2): the "
        "two sides share no cipher suite, group or signature algorithm, or the server "
        "refused something about the client.",
        "Compare what the client offers with what the server accepts (openssl s_client, or "
        "the ClientHello decoder of notebook 06). Admin: enable modern suites and groups.",
    ),
    "unrecognized-name": Advice(
        "The server does not serve the name you sent in SNI (alert unrecognized_name, "
        "RFC 6066 §3), so it has no certificate to offer for it.",
        "Check the host name in the URL; admin: configure a certificate for that name.",
    ),
    "legacy-renegotiation": Advice(
        "The server does not support secure renegotiation (RFC 5746), which OpenSSL 3 "
        "requires; such servers are old and vulnerable (CVE-2009-3555).",
        "Admin: upgrade the server's TLS library.",
    ),
    "bad-record-mac": Advice(
        "A TLS record failed its integrity check: the AEAD tag (RFC 8446 §5.2; in TLS 1.2 "
        "the record MAC, RFC 5246 §6.2.3) did not match, so the receiver refused the record "
        "and ended the connection with a bad_record_mac alert (RFC 8446 §6.2). Bytes were "
        "changed on the way (an attacker, a broken middlebox or network card) or the two "
        "sides derived different keys. TLS never delivers data it cannot authenticate. "
        "Your side's refusal is named 'decryption failed or bad record mac' on OpenSSL 3.0 "
        "and 3.1 and 'record layer failure' from OpenSSL 3.2 on (the general name for any "
        "record refused with an alert); the peer's refusal reads 'alert bad record mac'.",
        "If it happens once, retry. If it repeats, look for what sits between the two ends "
        "(a TLS-inspecting proxy, a load balancer, NIC offloading) and capture the traffic "
        "on both sides to see where the bytes change.",
    ),
    "closed": Advice(
        "The server closed the connection without a TLS alert (an EOF where a record was "
        "due): it may have rejected us before TLS started (an access list, a wrong SNI "
        "name), crashed mid-handshake, or a middlebox cut the connection. Python names this "
        "SSLEOFError ('EOF occurred in violation of protocol') on every version. Right after "
        "a TLS 1.3 handshake it is often a refused client certificate whose alert was lost: "
        "the client's handshake is already over (RFC 8446 §4.4.2.4), and a server that closes "
        "at once can tear the connection down before its alert is read. Python 3.11 and 3.12 "
        "report that case as SSLEOFError on the write too; Python 3.13+ reports the TCP "
        "reset underneath it instead (kind 'reset').",
        "Read the server's log; check that this port speaks TLS and that nothing in between "
        "interferes. If the server wants a client certificate, present one.",
    ),
    # ---- rungs 1-3: name, TCP, records
    "not-tls": Advice(
        "Something answered, but not with TLS: the first bytes back are not a TLS record "
        "header (RFC 8446 §5.1), so OpenSSL reports a 'wrong version number' (on every "
        "OpenSSL version: it sends no alert to a peer that is not speaking TLS). Almost "
        "always the port speaks plain HTTP, or the URL says https:// for an http:// service.",
        "Use the port that speaks TLS (443 by convention), or http:// if the service "
        "really is plain text. Through a proxy: most corporate proxies speak plain HTTP on "
        "their own port, so HTTPS_PROXY must start with http://, not https:// (an https:// "
        "proxy URL makes the client start TLS with the proxy itself). Admin: put TLS in "
        "front of the service.",
    ),
    "dns": Advice(
        "The host name could not be turned into an address, so no connection was even "
        "tried. The name may be misspelt or may not exist. Names under .invalid never "
        "resolve (RFC 6761 §6.4), and lab names exist only while the lab runs.",
        "Check the spelling of the host; for lab hosts, start the lab with "
        "helpers.lab.get_lab() and use lab.url(name).",
    ),
    "refused": Advice(
        "The machine answered, but nothing listens on that port: it replied to our TCP SYN "
        "with a reset (RFC 9293 §3.10.7). TLS never started.",
        "Check the port number and that the server is running.",
    ),
    "timeout": Advice(
        "Nothing came back in time. Either the TCP connection was never answered (a "
        "firewall dropping packets, a wrong address) or it opened and the server never sent "
        "its half of the handshake (overloaded, or a service that waits for the client to "
        "speak a different protocol).",
        "Check host and port, then any firewall in between; retry with a longer timeout=.",
    ),
    "reset": Advice(
        "The connection was reset (TCP RST): the server, or a middlebox, dropped it "
        "abruptly. A server that closes a socket with unread data in it sends a reset, so "
        "right after a TLS 1.3 handshake this is often a server refusing your client "
        "certificate: its alert (certificate_required, unknown_ca) was lost with the "
        "connection. Python 3.13+ reports that reset as ConnectionResetError, on the write "
        "or on the read; Python 3.11 and 3.12 report SSLEOFError (kind 'closed') on the "
        "write and an empty read.",
        "Read the server's log; a firewall or a TLS-inspecting proxy may be interfering. "
        "If the server wants a client certificate, present one.",
    ),
    "proxy": Advice(
        "The HTTP proxy between you and the server refused to open the tunnel, or could not "
        "be reached: an HTTPS request through a proxy starts with CONNECT host:port (RFC 9110 "
        "§9.3.6), and the proxy answered 407 (it wants a user name and password, §15.5.8), "
        "403 (policy forbids this host) or 502/503 (it could not reach the server), or "
        "nothing listens at the proxy's address. TLS never started.",
        "Check HTTPS_PROXY (and NO_PROXY for hosts that must go direct); put credentials in "
        "the proxy URL (http://user:password@proxy:3128) or ask for the host to be allowed.",
    ),
    "unreachable": Advice(
        "There is no route to that address: the network is down or the address is wrong.",
        "Check the network connection and the address.",
    ),
    "blocked": Advice(
        "The course's offline guard (helpers.netguard) stopped this connection before it "
        "left the machine: lessons and tests run against the local lab.",
        "Use a lab host (helpers.lab.get_lab(), lab.url(name)); to reach real hosts turn "
        "live mode on with helpers.live.enable() in a notebook.",
    ),
    "tls-error": Advice(
        "OpenSSL reported a TLS error that is not one of the usual ones; the raw message "
        "below names it.",
        "Search for the OpenSSL reason in the raw message (in capitals, e.g. NO_SHARED_CIPHER).",
    ),
    "error": Advice(
        "The connection failed with an error that is not a TLS or network failure this "
        "module knows.",
        "Read the raw message and the exception chain below.",
    ),
}
