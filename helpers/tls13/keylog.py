"""The NSS key log: the secrets an endpoint wrote down (introduced in notebook 06).

A passive observer cannot compute the secrets of a TLS 1.3 connection: that is the
whole point of ephemeral Diffie-Hellman. But an endpoint can *tell* you its secrets.
OpenSSL (and so Python's ``SSLContext.keylog_filename``), NSS, BoringSSL, Go and
curl's ``SSLKEYLOGFILE`` all write them in the NSS key log format, one line per
secret::

    # comments and blank lines are allowed
    CLIENT_HANDSHAKE_TRAFFIC_SECRET <client_random, 64 hex digits> <secret, hex>
    SERVER_HANDSHAKE_TRAFFIC_SECRET <client_random> <secret>
    CLIENT_TRAFFIC_SECRET_0         <client_random> <secret>
    SERVER_TRAFFIC_SECRET_0         <client_random> <secret>
    EXPORTER_SECRET                 <client_random> <secret>

The ``client_random`` (the 32 random bytes of the ClientHello, sent in the clear)
says which connection a line belongs to, so one file can hold many connections.
:data:`KEYLOG_LABELS` gives each label the name RFC 8446 uses for its secret.

**Python reads ``SSLKEYLOGFILE`` by itself.** :func:`ssl.create_default_context`
(since Python 3.8) sets ``keylog_filename`` from that environment variable when it is
set (unless Python runs with ``-E``), and so does urllib3's ``create_urllib3_context()``,
which every ``requests`` call uses: with the variable exported, every handshake of
those programs appends its secrets to that file, no code change needed. A bare
``ssl.SSLContext(...)`` does not look at the variable; set ``keylog_filename`` on it.
Read in CPython's ``Lib/ssl.py`` and urllib3's ``util/ssl_.py`` (2.x).

**A key log is as dangerous as a private key, and worse in one way.** Whoever holds
it reads every byte of those connections: passwords, cookies, tokens. It is written
silently, in plain text, for as long as the variable or the setting is on. Forward
secrecy protects recorded traffic against a *later* theft of the server key; a key
log throws that protection away for the connections it covers. Never commit one,
never leave ``SSLKEYLOGFILE`` set in a shell profile, delete the file after the
lesson. The course writes key logs into temporary directories only.
"""

from __future__ import annotations

import re

from ..errors import ParseError

KEYLOG_LABELS = {
    "CLIENT_EARLY_TRAFFIC_SECRET": "client_early_traffic_secret",
    "EARLY_EXPORTER_SECRET": "early_exporter_master_secret",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": "client_handshake_traffic_secret",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": "server_handshake_traffic_secret",
    "CLIENT_TRAFFIC_SECRET_0": "client_application_traffic_secret_0",
    "SERVER_TRAFFIC_SECRET_0": "server_application_traffic_secret_0",
    "EXPORTER_SECRET": "exporter_master_secret",
    "CLIENT_RANDOM": "TLS 1.2 master secret",
}

_KEYLOG_LINE = re.compile(r"^([A-Z0-9_]+)\s+([0-9a-fA-F]{64})\s+([0-9a-fA-F]+)$")


def parse_keylog(text: str | bytes) -> dict[bytes, dict[str, bytes]]:
    """Parse an NSS key log into ``{client_random: {label: secret}}``.

    Comment lines (``#``) and blank lines are skipped; any other line that is not
    ``LABEL <64 hex digits> <hex>`` raises :class:`~helpers.errors.ParseError`
    naming its line number.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    entries: dict[bytes, dict[str, bytes]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYLOG_LINE.match(line)
        if match is None or len(match.group(3)) % 2:
            raise ParseError(
                f"Line {number} of the key log is not 'LABEL client_random secret': {line[:60]!r}",
                "A key log line is a label, 64 hex digits and a hex secret, separated by spaces.",
            )
        label, random_hex, secret_hex = match.groups()
        entries.setdefault(bytes.fromhex(random_hex), {})[label] = bytes.fromhex(secret_hex)
    return entries
