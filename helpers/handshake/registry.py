"""The IANA names of TLS's numbers (introduced in notebook 06; also used by notebook 08's probe).

On the wire TLS speaks only in numbers: content type 22, handshake type 1, cipher
suite 0x1301, group 29, alert 20. The IANA registries give them names, and this module
holds the part of each registry a learner meets in practice, as plain dictionaries
(``CIPHER_SUITES[0x1301] == "TLS_AES_128_GCM_SHA256"``), with one small function per
registry that also names what is *not* in the table: ``cipher_suite_name(0x0a0a)`` is
``"GREASE (0x0a0a)"`` and a value nobody registered is ``"unknown (0x....)"``.

GREASE (RFC 8701) deserves a word: a client deliberately sprinkles reserved nonsense
values into its lists, so that a server which chokes on a value it does not know gets
caught today rather than the day a real new value ships. :func:`is_grease` spots them.

Where the names come from (checked December 2026): the IANA registries "Transport Layer
Security (TLS) Parameters" (https://www.iana.org/assignments/tls-parameters/: cipher
suites, supported groups, SignatureScheme, alerts, content and handshake types; RFC 8447
and RFC 8446 §11 set their rules) and "TLS ExtensionType Values"
(https://www.iana.org/assignments/tls-extensiontype-values/). How they were checked:
every suite OpenSSL 3 can negotiate is here under its IANA name, compared line by line
with ``openssl ciphers -stdname -V ALL:COMPLEMENTOFALL`` on OpenSSL 3.0 and 3.5 (158
suites on both; ``tests/test_handshake.py`` runs it); the extension, group and signature
names agree with Wireshark's value strings (``tshark -G values``, 4.0), which predate
the ML-KEM groups, ML-DSA and ECH. Two values are not IANA's: Chrome's ALPS code points
17513 and 17613 (draft-vvv-tls-alps, named as BoringSSL's ``tls1.h`` names them), and
``X25519Kyber768Draft00`` (0x6399), a retired experiment.

Two magic byte strings of RFC 8446 §4.1.3 live here too: the random that turns a
ServerHello into a HelloRetryRequest (:data:`HRR_RANDOM`), and the downgrade sentinels
a TLS 1.3 server writes at the end of its random when it negotiates an older version.
"""

from __future__ import annotations

__all__ = [
    "CONTENT_TYPES",
    "HANDSHAKE_TYPES",
    "VERSIONS",
    "CIPHER_SUITES",
    "EXTENSION_TYPES",
    "NAMED_GROUPS",
    "SIGNATURE_SCHEMES",
    "ALERT_DESCRIPTIONS",
    "ALERT_LEVELS",
    "PSK_MODES",
    "EC_POINT_FORMATS",
    "COMPRESSION_METHODS",
    "CERT_COMPRESSION",
    "HRR_RANDOM",
    "DOWNGRADE_TLS12",
    "DOWNGRADE_TLS11",
    "is_grease",
    "version_name",
    "cipher_suite_name",
    "group_name",
    "signature_scheme_name",
    "extension_name",
    "alert_name",
    "key_exchange_of",
]


#: RFC 8446 §5.1 ContentType (and RFC 6520 heartbeat).
CONTENT_TYPES: dict[int, str] = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
}

#: RFC 8446 §4 and RFC 5246 §7.4 HandshakeType, by the name of the struct each carries.
HANDSHAKE_TYPES: dict[int, str] = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    3: "HelloVerifyRequest",
    4: "NewSessionTicket",
    5: "EndOfEarlyData",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
    22: "CertificateStatus",
    24: "KeyUpdate",
    25: "CompressedCertificate",
    254: "MessageHash",
}

#: Protocol versions, spelled the way :meth:`ssl.SSLSocket.version` spells them.
VERSIONS: dict[int, str] = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

#: IANA TLS Cipher Suites registry: the suites a current client or server offers.
CIPHER_SUITES: dict[int, str] = {
    # TLS 1.3 (RFC 8446 §B.4): AEAD + hash only; key exchange is negotiated separately.
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    # TLS 1.2 ECDHE (RFC 8422, RFC 5289, RFC 7905)
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC0AE: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    0xC0AF: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
    # TLS 1.2 finite-field DHE (RFC 5246, RFC 5288, RFC 7905)
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x00A2: "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
    0x00A3: "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
    0x0032: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    0x0038: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    0xC09E: "TLS_DHE_RSA_WITH_AES_128_CCM",
    0xC09F: "TLS_DHE_RSA_WITH_AES_256_CCM",
    # TLS 1.2 static RSA key transport (no forward secrecy; RFC 5246, RFC 5288)
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0xC09C: "TLS_RSA_WITH_AES_128_CCM",
    0xC09D: "TLS_RSA_WITH_AES_256_CCM",
    0x0000: "TLS_NULL_WITH_NULL_NULL",
    0x0001: "TLS_RSA_WITH_NULL_MD5",
    0x0002: "TLS_RSA_WITH_NULL_SHA",
    0x003B: "TLS_RSA_WITH_NULL_SHA256",
    # Pre-shared keys (RFC 4279, RFC 5487, RFC 7905)
    0x008C: "TLS_PSK_WITH_AES_128_CBC_SHA",
    0x008D: "TLS_PSK_WITH_AES_256_CBC_SHA",
    0x00A8: "TLS_PSK_WITH_AES_128_GCM_SHA256",
    0x00A9: "TLS_PSK_WITH_AES_256_GCM_SHA384",
    0xCCAB: "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAC: "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAD: "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    # DHE with DSA certificates (RFC 5246 §A.5). 0x0013 (3DES) is not in `openssl ciphers -V
    # ALL:COMPLEMENTOFALL` of OpenSSL 3.0.22 or 3.5.9; it is named here for older captures.
    0x0013: "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
    0x0040: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",  # DHE-DSS-AES128-SHA256
    0x006A: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",  # DHE-DSS-AES256-SHA256
    # CAMELLIA (RFC 5932, RFC 6367)
    0x0041: "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",  # CAMELLIA128-SHA
    0x0044: "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA",  # DHE-DSS-CAMELLIA128-SHA
    0x0045: "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA",  # DHE-RSA-CAMELLIA128-SHA
    0x0084: "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",  # CAMELLIA256-SHA
    0x0087: "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA",  # DHE-DSS-CAMELLIA256-SHA
    0x0088: "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",  # DHE-RSA-CAMELLIA256-SHA
    0x00BA: "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256",  # CAMELLIA128-SHA256
    0x00BD: "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256",  # DHE-DSS-CAMELLIA128-SHA256
    0x00BE: "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",  # DHE-RSA-CAMELLIA128-SHA256
    0x00C0: "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256",  # CAMELLIA256-SHA256
    0x00C3: "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256",  # DHE-DSS-CAMELLIA256-SHA256
    0x00C4: "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256",  # DHE-RSA-CAMELLIA256-SHA256
    0xC072: "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256",  # ECDHE-ECDSA-CAMELLIA128-SHA256
    0xC073: "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",  # ECDHE-ECDSA-CAMELLIA256-SHA384
    0xC076: "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",  # ECDHE-RSA-CAMELLIA128-SHA256
    0xC077: "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384",  # ECDHE-RSA-CAMELLIA256-SHA384
    # ARIA (RFC 6209)
    0xC050: "TLS_RSA_WITH_ARIA_128_GCM_SHA256",  # ARIA128-GCM-SHA256
    0xC051: "TLS_RSA_WITH_ARIA_256_GCM_SHA384",  # ARIA256-GCM-SHA384
    0xC052: "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256",  # DHE-RSA-ARIA128-GCM-SHA256
    0xC053: "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384",  # DHE-RSA-ARIA256-GCM-SHA384
    0xC056: "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256",  # DHE-DSS-ARIA128-GCM-SHA256
    0xC057: "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384",  # DHE-DSS-ARIA256-GCM-SHA384
    0xC05C: "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256",  # ECDHE-ECDSA-ARIA128-GCM-SHA256
    0xC05D: "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384",  # ECDHE-ECDSA-ARIA256-GCM-SHA384
    0xC060: "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256",  # ECDHE-ARIA128-GCM-SHA256
    0xC061: "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384",  # ECDHE-ARIA256-GCM-SHA384
    # AES-CCM with an 8-byte tag (RFC 6655)
    0xC0A0: "TLS_RSA_WITH_AES_128_CCM_8",  # AES128-CCM8
    0xC0A1: "TLS_RSA_WITH_AES_256_CCM_8",  # AES256-CCM8
    0xC0A2: "TLS_DHE_RSA_WITH_AES_128_CCM_8",  # DHE-RSA-AES128-CCM8
    0xC0A3: "TLS_DHE_RSA_WITH_AES_256_CCM_8",  # DHE-RSA-AES256-CCM8
    # NULL encryption: integrity only, everything readable on the wire (RFC 8422)
    0xC006: "TLS_ECDHE_ECDSA_WITH_NULL_SHA",  # ECDHE-ECDSA-NULL-SHA
    0xC010: "TLS_ECDHE_RSA_WITH_NULL_SHA",  # ECDHE-RSA-NULL-SHA
    # Anonymous (EC)DH: no authentication at all, an active attacker sits in the middle (RFC 5246, RFC 8422, RFC 5932)
    0x0034: "TLS_DH_anon_WITH_AES_128_CBC_SHA",  # ADH-AES128-SHA
    0x003A: "TLS_DH_anon_WITH_AES_256_CBC_SHA",  # ADH-AES256-SHA
    0x0046: "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA",  # ADH-CAMELLIA128-SHA
    0x006C: "TLS_DH_anon_WITH_AES_128_CBC_SHA256",  # ADH-AES128-SHA256
    0x006D: "TLS_DH_anon_WITH_AES_256_CBC_SHA256",  # ADH-AES256-SHA256
    0x0089: "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA",  # ADH-CAMELLIA256-SHA
    0x00A6: "TLS_DH_anon_WITH_AES_128_GCM_SHA256",  # ADH-AES128-GCM-SHA256
    0x00A7: "TLS_DH_anon_WITH_AES_256_GCM_SHA384",  # ADH-AES256-GCM-SHA384
    0x00BF: "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256",  # ADH-CAMELLIA128-SHA256
    0x00C5: "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256",  # ADH-CAMELLIA256-SHA256
    0xC015: "TLS_ECDH_anon_WITH_NULL_SHA",  # AECDH-NULL-SHA
    0xC018: "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",  # AECDH-AES128-SHA
    0xC019: "TLS_ECDH_anon_WITH_AES_256_CBC_SHA",  # AECDH-AES256-SHA
    # More pre-shared-key suites (RFC 4279, RFC 4785, RFC 5487, RFC 5489, RFC 6209, RFC 6367, RFC 6655, RFC 7905)
    0x002C: "TLS_PSK_WITH_NULL_SHA",  # PSK-NULL-SHA
    0x002D: "TLS_DHE_PSK_WITH_NULL_SHA",  # DHE-PSK-NULL-SHA
    0x002E: "TLS_RSA_PSK_WITH_NULL_SHA",  # RSA-PSK-NULL-SHA
    0x0090: "TLS_DHE_PSK_WITH_AES_128_CBC_SHA",  # DHE-PSK-AES128-CBC-SHA
    0x0091: "TLS_DHE_PSK_WITH_AES_256_CBC_SHA",  # DHE-PSK-AES256-CBC-SHA
    0x0094: "TLS_RSA_PSK_WITH_AES_128_CBC_SHA",  # RSA-PSK-AES128-CBC-SHA
    0x0095: "TLS_RSA_PSK_WITH_AES_256_CBC_SHA",  # RSA-PSK-AES256-CBC-SHA
    0x00AA: "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",  # DHE-PSK-AES128-GCM-SHA256
    0x00AB: "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384",  # DHE-PSK-AES256-GCM-SHA384
    0x00AC: "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256",  # RSA-PSK-AES128-GCM-SHA256
    0x00AD: "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384",  # RSA-PSK-AES256-GCM-SHA384
    0x00AE: "TLS_PSK_WITH_AES_128_CBC_SHA256",  # PSK-AES128-CBC-SHA256
    0x00AF: "TLS_PSK_WITH_AES_256_CBC_SHA384",  # PSK-AES256-CBC-SHA384
    0x00B0: "TLS_PSK_WITH_NULL_SHA256",  # PSK-NULL-SHA256
    0x00B1: "TLS_PSK_WITH_NULL_SHA384",  # PSK-NULL-SHA384
    0x00B2: "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256",  # DHE-PSK-AES128-CBC-SHA256
    0x00B3: "TLS_DHE_PSK_WITH_AES_256_CBC_SHA384",  # DHE-PSK-AES256-CBC-SHA384
    0x00B4: "TLS_DHE_PSK_WITH_NULL_SHA256",  # DHE-PSK-NULL-SHA256
    0x00B5: "TLS_DHE_PSK_WITH_NULL_SHA384",  # DHE-PSK-NULL-SHA384
    0x00B6: "TLS_RSA_PSK_WITH_AES_128_CBC_SHA256",  # RSA-PSK-AES128-CBC-SHA256
    0x00B7: "TLS_RSA_PSK_WITH_AES_256_CBC_SHA384",  # RSA-PSK-AES256-CBC-SHA384
    0x00B8: "TLS_RSA_PSK_WITH_NULL_SHA256",  # RSA-PSK-NULL-SHA256
    0x00B9: "TLS_RSA_PSK_WITH_NULL_SHA384",  # RSA-PSK-NULL-SHA384
    0xC035: "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA",  # ECDHE-PSK-AES128-CBC-SHA
    0xC036: "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA",  # ECDHE-PSK-AES256-CBC-SHA
    0xC037: "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",  # ECDHE-PSK-AES128-CBC-SHA256
    0xC038: "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384",  # ECDHE-PSK-AES256-CBC-SHA384
    0xC039: "TLS_ECDHE_PSK_WITH_NULL_SHA",  # ECDHE-PSK-NULL-SHA
    0xC03A: "TLS_ECDHE_PSK_WITH_NULL_SHA256",  # ECDHE-PSK-NULL-SHA256
    0xC03B: "TLS_ECDHE_PSK_WITH_NULL_SHA384",  # ECDHE-PSK-NULL-SHA384
    0xC06A: "TLS_PSK_WITH_ARIA_128_GCM_SHA256",  # PSK-ARIA128-GCM-SHA256
    0xC06B: "TLS_PSK_WITH_ARIA_256_GCM_SHA384",  # PSK-ARIA256-GCM-SHA384
    0xC06C: "TLS_DHE_PSK_WITH_ARIA_128_GCM_SHA256",  # DHE-PSK-ARIA128-GCM-SHA256
    0xC06D: "TLS_DHE_PSK_WITH_ARIA_256_GCM_SHA384",  # DHE-PSK-ARIA256-GCM-SHA384
    0xC06E: "TLS_RSA_PSK_WITH_ARIA_128_GCM_SHA256",  # RSA-PSK-ARIA128-GCM-SHA256
    0xC06F: "TLS_RSA_PSK_WITH_ARIA_256_GCM_SHA384",  # RSA-PSK-ARIA256-GCM-SHA384
    0xC094: "TLS_PSK_WITH_CAMELLIA_128_CBC_SHA256",  # PSK-CAMELLIA128-SHA256
    0xC095: "TLS_PSK_WITH_CAMELLIA_256_CBC_SHA384",  # PSK-CAMELLIA256-SHA384
    0xC096: "TLS_DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256",  # DHE-PSK-CAMELLIA128-SHA256
    0xC097: "TLS_DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",  # DHE-PSK-CAMELLIA256-SHA384
    0xC098: "TLS_RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256",  # RSA-PSK-CAMELLIA128-SHA256
    0xC099: "TLS_RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384",  # RSA-PSK-CAMELLIA256-SHA384
    0xC09A: "TLS_ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256",  # ECDHE-PSK-CAMELLIA128-SHA256
    0xC09B: "TLS_ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",  # ECDHE-PSK-CAMELLIA256-SHA384
    0xC0A4: "TLS_PSK_WITH_AES_128_CCM",  # PSK-AES128-CCM
    0xC0A5: "TLS_PSK_WITH_AES_256_CCM",  # PSK-AES256-CCM
    0xC0A6: "TLS_DHE_PSK_WITH_AES_128_CCM",  # DHE-PSK-AES128-CCM
    0xC0A7: "TLS_DHE_PSK_WITH_AES_256_CCM",  # DHE-PSK-AES256-CCM
    0xC0A8: "TLS_PSK_WITH_AES_128_CCM_8",  # PSK-AES128-CCM8
    0xC0A9: "TLS_PSK_WITH_AES_256_CCM_8",  # PSK-AES256-CCM8
    0xC0AA: "TLS_PSK_DHE_WITH_AES_128_CCM_8",  # DHE-PSK-AES128-CCM8
    0xC0AB: "TLS_PSK_DHE_WITH_AES_256_CCM_8",  # DHE-PSK-AES256-CCM8
    0xCCAE: "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256",  # RSA-PSK-CHACHA20-POLY1305
    # SRP password key exchange (RFC 5054)
    0xC01D: "TLS_SRP_SHA_WITH_AES_128_CBC_SHA",  # SRP-AES-128-CBC-SHA
    0xC01E: "TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA",  # SRP-RSA-AES-128-CBC-SHA
    0xC01F: "TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA",  # SRP-DSS-AES-128-CBC-SHA
    0xC020: "TLS_SRP_SHA_WITH_AES_256_CBC_SHA",  # SRP-AES-256-CBC-SHA
    0xC021: "TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA",  # SRP-RSA-AES-256-CBC-SHA
    0xC022: "TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA",  # SRP-DSS-AES-256-CBC-SHA
    # Signalling values, not real suites
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",  # RFC 5746
    0x5600: "TLS_FALLBACK_SCSV",  # RFC 7507
}

#: IANA TLS ExtensionType Values (RFC 8446 §4.2 and the RFCs it names).
EXTENSION_TYPES: dict[int, str] = {
    0: "server_name",
    1: "max_fragment_length",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    19: "client_certificate_type",
    20: "server_certificate_type",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    27: "compress_certificate",
    28: "record_size_limit",
    34: "delegated_credential",  # RFC 9345 §4.1
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    57: "quic_transport_parameters",
    13172: "next_protocol_negotiation",
    17513: "application_settings_old",  # ALPS, draft-vvv-tls-alps: Chrome's first code point (0x4469)
    17613: "application_settings",  # ALPS's new code point (0x44cd), Chrome's default; not IANA-assigned
    65037: "encrypted_client_hello",
    65281: "renegotiation_info",
}

#: IANA TLS Supported Groups (RFC 8446 §4.2.7, RFC 7919, draft-ietf-tls-ecdhe-mlkem).
NAMED_GROUPS: dict[int, str] = {
    23: "secp256r1",
    24: "secp384r1",
    25: "secp521r1",
    29: "x25519",
    30: "x448",
    256: "ffdhe2048",
    257: "ffdhe3072",
    258: "ffdhe4096",
    259: "ffdhe6144",
    260: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00",
}

#: IANA TLS SignatureScheme (RFC 8446 §4.2.3), plus the TLS 1.2 hash/signature pairs
#: (RFC 5246 §7.4.1.4.1) that are not also TLS 1.3 code points.
SIGNATURE_SCHEMES: dict[int, str] = {
    0x0401: "rsa_pkcs1_sha256",
    0x0501: "rsa_pkcs1_sha384",
    0x0601: "rsa_pkcs1_sha512",
    0x0403: "ecdsa_secp256r1_sha256",
    0x0503: "ecdsa_secp384r1_sha384",
    0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_rsae_sha256",
    0x0805: "rsa_pss_rsae_sha384",
    0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519",
    0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
    0x081A: "ecdsa_brainpoolP256r1tls13_sha256",
    0x081B: "ecdsa_brainpoolP384r1tls13_sha384",
    0x081C: "ecdsa_brainpoolP512r1tls13_sha512",
    # ML-DSA (FIPS 204) for TLS 1.3, draft-ietf-tls-mldsa; OpenSSL 3.5 offers them when asked
    # (``-sigalgs mldsa44:mldsa65:mldsa87`` puts 0x0904 0x0905 0x0906 on the wire, measured)
    0x0904: "mldsa44",
    0x0905: "mldsa65",
    0x0906: "mldsa87",
    0x0201: "rsa_pkcs1_sha1",
    0x0203: "ecdsa_sha1",
    0x0202: "dsa_sha1",
    0x0301: "rsa_pkcs1_sha224",
    0x0302: "dsa_sha224",
    0x0303: "ecdsa_sha224",
    0x0402: "dsa_sha256",
    0x0502: "dsa_sha384",
    0x0602: "dsa_sha512",
}

#: RFC 8446 §6 AlertDescription (with the TLS 1.2-only values of RFC 5246 §7.2).
ALERT_DESCRIPTIONS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}

ALERT_LEVELS: dict[int, str] = {1: "warning", 2: "fatal"}
PSK_MODES: dict[int, str] = {0: "psk_ke", 1: "psk_dhe_ke"}
EC_POINT_FORMATS: dict[int, str] = {
    0: "uncompressed",
    1: "ansiX962_compressed_prime",
    2: "ansiX962_compressed_char2",
}
COMPRESSION_METHODS: dict[int, str] = {0: "null", 1: "DEFLATE"}
CERT_COMPRESSION: dict[int, str] = {1: "zlib", 2: "brotli", 3: "zstd"}

# RFC 8446 §4.1.3: "For reasons of backward compatibility with middleboxes (see
# Appendix D.4), the HelloRetryRequest message uses the same structure as the
# ServerHello, but with Random set to the special value of the SHA-256 of
# "HelloRetryRequest":
#   CF 21 AD 74 E5 9A 61 11 BE 1D 8C 02 1E 65 B8 91
#   C2 A2 11 16 7A BB 8C 5E 07 9E 09 E2 C8 A8 33 9C"
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

# RFC 8446 §4.1.3: a TLS 1.3 server that negotiates TLS 1.2 (or below) sets the last
# eight bytes of its random to "DOWNGRD" + 01 (or 00): a downgrade-attack tripwire.
DOWNGRADE_TLS12 = b"DOWNGRD\x01"
DOWNGRADE_TLS11 = b"DOWNGRD\x00"


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0A0A, 0x1A1A, ... 0xFAFA): reserved nonsense a client
    sprinkles into its lists so that servers which choke on unknown values get caught."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def _name(table: dict[int, str], value: int, width: int = 4) -> str:
    if value in table:
        return table[value]
    if width == 4 and is_grease(value):
        return f"GREASE (0x{value:04x})"
    return f"unknown (0x{value:0{width}x})"


def version_name(value: int) -> str:
    """``0x0304`` → ``"TLSv1.3"`` (GREASE and unknown values are named too)."""
    return _name(VERSIONS, value)


def cipher_suite_name(value: int) -> str:
    """``0x1301`` → ``"TLS_AES_128_GCM_SHA256"``."""
    return _name(CIPHER_SUITES, value)


def group_name(value: int) -> str:
    """``29`` → ``"x25519"``."""
    return _name(NAMED_GROUPS, value)


def signature_scheme_name(value: int) -> str:
    """``0x0804`` → ``"rsa_pss_rsae_sha256"``."""
    return _name(SIGNATURE_SCHEMES, value)


def extension_name(value: int) -> str:
    """``0`` → ``"server_name"``."""
    return _name(EXTENSION_TYPES, value)


def alert_name(value: int) -> str:
    """``20`` → ``"bad_record_mac"``."""
    return _name(ALERT_DESCRIPTIONS, value, 2)


def key_exchange_of(cipher_suite: int) -> str | None:
    """The TLS 1.2 key exchange a suite implies: ``"ECDHE"``, ``"DHE"``, ``"RSA"``, ``"PSK"``, ``"SRP"``.

    The part of the IANA name between ``TLS_`` and ``_WITH_`` says it. Anonymous suites
    (``TLS_DH_anon_...``, ``TLS_ECDH_anon_...``) give ``"DHE"`` / ``"ECDHE"``: their
    ServerKeyExchange has the same layout, only without a signature (RFC 5246 §7.4.3),
    which is exactly why nobody can tell who sent it. Every PSK variant (``PSK``,
    ``DHE_PSK``, ``ECDHE_PSK``, ``RSA_PSK``) gives ``"PSK"``: their ServerKeyExchange
    starts with a psk_identity_hint (RFC 4279 §2, RFC 5489 §2), a layout of its own.
    ``None`` for TLS 1.3 suites (key exchange is negotiated by key_share there) and for
    suites this module does not know.
    """
    name = CIPHER_SUITES.get(cipher_suite, "")
    if "_WITH_" not in name:
        return None
    kex = name[len("TLS_") : name.index("_WITH_")]
    if "PSK" in kex:
        return "PSK"
    if kex.startswith("SRP"):
        return "SRP"
    if kex.startswith(("ECDHE", "ECDH_anon")):
        return "ECDHE"
    if kex.startswith(("DHE", "DH_anon")):
        return "DHE"
    if kex == "RSA":
        return "RSA"
    return None
