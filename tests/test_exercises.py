"""Every exercise check rejects the student's stub and accepts the solution.

Exercise cells carry the tag ``exercise:nbNN.name`` in the lesson (the stub) and in
``notebooks/solutions/`` (the solution). Each cell is run on its own, in a fresh
namespace, exactly as a learner's kernel would run it.
"""

from __future__ import annotations

import contextlib
import io

import nbformat
import pytest

from helpers import exercises

from . import notebooks as nbs

TAG = "exercise:"


def _tagged_cells(paths) -> dict[str, str]:
    cells: dict[str, str] = {}
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith(TAG):
                    key = tag[len(TAG) :]
                    assert key not in cells, f"{key} is tagged twice ({path.name})"
                    cells[key] = cell.source
    return cells


STUBS = _tagged_cells(nbs.lessons())
SOLUTIONS = _tagged_cells(nbs.solutions())


def _run(source: str, key: str) -> exercises.CheckResult:
    namespace: dict = {"__name__": "__exercise__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, f"<{key}>", "exec"), namespace)  # noqa: S102 (our own notebooks)
    ex = exercises.get(key)
    return ex.check(namespace[ex.name])


def test_every_lesson_has_at_least_two_exercises():
    for path in nbs.lessons():
        number = path.name[:2]
        mine = [k for k in STUBS if k.startswith(f"nb{number}.")]
        assert len(mine) >= 2, f"{path.name} has {len(mine)} exercises"


def test_every_exercise_has_a_solution_and_every_solution_an_exercise():
    assert set(STUBS) == set(SOLUTIONS)


def test_solutions_use_nbgrader_markers():
    for key, source in SOLUTIONS.items():
        assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, key


@pytest.mark.parametrize("key", sorted(STUBS))
def test_check_rejects_the_stub(key):
    result = _run(STUBS[key], key)
    assert not result.passed
    assert not result.attempted, "the stub should read as 'not attempted yet'"


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_check_accepts_the_solution(key):
    result = _run(SOLUTIONS[key], key)
    assert result.passed, result.message


@pytest.mark.parametrize("key", sorted(STUBS))
def test_check_rejects_a_wrong_answer(key):
    """An answer that returns something plausible but wrong is reported as wrong, not as passed."""
    ex = exercises.get(key)
    result = ex.check(lambda *args, **kwargs: None)
    assert not result.passed and result.attempted


def test_hints_are_revealed_one_at_a_time():
    ex = exercises.get("nb00.openssl_version_tuple")
    ex._hints_shown = 0
    first, second = ex.hint(), ex.hint()
    assert (first.number, second.number) == (1, 2)
    assert first.text != second.text
    assert "Hint 1/" in first._repr_html_()


def test_a_crash_in_the_learners_code_points_at_their_line():
    ex = exercises.get("nb00.openssl_version_tuple")
    namespace: dict = {}
    exec("def broken(text):\n    return 1 / 0\n", namespace)  # noqa: S102
    result = ex.check(namespace["broken"])
    assert result.attempted and not result.passed
    assert (
        result.message.startswith("your code raised ZeroDivisionError")
        and "line 2" in result.message
    )


def test_a_crash_inside_the_check_is_not_blamed_on_the_learner():
    def checker(answer):
        answer()
        raise OSError("the lab is not running")

    ex = exercises.Exercise("nbXX", "demo", checker)
    result = ex.check(lambda: 42)
    assert not result.passed
    assert result.message == "the check could not run: OSError: the lab is not running"


# ---------------------------------------------------------------------------------------
# Framework (helpers/exercises/__init__.py), notebook 00 and notebook 01: plausible wrong
# or unsafe answers, each rejected with a message that teaches.


def _define(source: str, name: str):
    """Define a learner's function from source, as a notebook cell would (file '<cell>')."""
    namespace: dict = {}
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 (our own test code)
    return namespace[name]


def _rejected(key: str, source: str, name: str) -> str:
    result = exercises.get(key).check(_define(source, name))
    assert result.attempted and not result.passed, f"{key} accepted a wrong answer"
    return result.message


def test_a_wrong_signature_names_the_parameters_the_stub_takes():
    message = _rejected("nb01.unseal", "def unseal(key, box):\n    return None\n", "unseal")
    assert message.startswith("your function must take (key, nonce, box)"), message
    assert "unseal(key, box)" in message


def test_a_wrong_signature_without_declared_params_still_blames_the_signature():
    def checker(answer):
        try:  # a checker that probes and swallows errors, as some do
            answer(("127.0.0.1", 1), "host", "ca.pem")
        except Exception:  # noqa: BLE001, S110
            pass
        assert answer(("127.0.0.1", 1), "host", "ca.pem") == 1, "expected 1"

    ex = exercises.Exercise("nbXX", "demo", checker)
    result = ex.check(lambda address: 1)
    assert result.attempted and not result.passed
    assert result.message.startswith("your function must take the parameters of the stub")
    assert "(address)" in result.message and "the check could not run" not in result.message


def test_a_wrong_signature_is_measured_against_the_lessons_stub_when_params_are_not_declared():
    ex = exercises.get("nb03.sans_of")
    assert ex.params is None or ex.params == ("cert",)
    assert ex.stub_params() == ("cert",)  # read from the cell tagged exercise:nb03.sans_of
    result = ex.check(lambda cert, extra: [])
    assert result.message.startswith("your function must take (cert), like the stub"), (
        result.message
    )


def test_passing_something_that_is_not_a_function_says_so():
    result = exercises.get("nb00.openssl_version_tuple").check((3, 0, 13))
    assert result.attempted and not result.passed
    assert result.message.startswith("pass your function itself"), result.message


def test_returning_none_says_so_even_when_the_check_chokes_on_it():
    def checker(answer):
        list(answer())  # a checker that forgot to test for None first

    result = exercises.Exercise("nbXX", "demo", checker).check(lambda: None)
    assert result.message.startswith("your function returned None"), result.message
    assert "the check could not run" not in result.message


@pytest.mark.parametrize(
    ("key", "source", "name"),
    [
        ("nb00.openssl_version_tuple", "def f(text):\n    (text.split()[1])\n", "f"),
        (
            "nb00.default_client_versions",
            "import ssl\ndef f():\n    ssl.create_default_context()\n",
            "f",
        ),
        ("nb01.unseal", "def f(key, nonce, box):\n    pass\n", "f"),
        ("nb01.session_key", "def f(my_private, peer_public):\n    pass\n", "f"),
    ],
)
def test_a_forgotten_return_is_reported_as_returning_none(key, source, name):
    message = _rejected(key, source, name)
    assert message.startswith("your function returned None:"), message


def test_hint_past_the_last_says_so_and_where_the_solution_is():
    ex = exercises.get("nb01.unseal")
    ex._hints_shown = 0
    shown = [ex.hint() for _ in range(len(ex.hints) + 1)]
    assert [h.after_last for h in shown[:-1]] == [""] * len(ex.hints)
    last = shown[-1]
    assert last.number == len(ex.hints) and "That was the last hint" in last.after_last
    assert "notebooks/solutions/01_tls_concepts.ipynb" in repr(last)
    assert "exercise:nb01.unseal" in last._repr_html_()


# --- notebook 00


def test_nb00_naive_int_parsing_points_at_the_learners_line():
    source = "def f(text):\n    a, b, c = text.split()[1].split('.')\n    return (int(a), int(b), int(c))\n"
    message = _rejected("nb00.openssl_version_tuple", source, "f")
    assert message.startswith("your code raised ValueError") and "line 3" in message


def test_nb00_version_info_slice_is_explained():
    source = "import ssl\ndef f(text):\n    return tuple(ssl.OPENSSL_VERSION_INFO[:3])\n"
    message = _rejected("nb00.openssl_version_tuple", source, "f")
    assert (
        "OPENSSL_VERSION_INFO" in message and "4th place" in message and "Parse the text" in message
    )


def test_nb00_a_list_is_not_a_tuple():
    source = "def f(text):\n    return [int(x) for x in text.split()[1].split('.')[:2]] + [0]\n"
    assert _rejected("nb00.openssl_version_tuple", source, "f") == "return a tuple, not list"


def test_nb00_raw_minimum_and_maximum_are_placeholders_not_versions():
    source = (
        "import ssl\ndef f():\n    ctx = ssl.create_default_context()\n"
        "    return [ctx.minimum_version, ctx.maximum_version]\n"
    )
    message = _rejected("nb00.default_client_versions", source, "f")
    assert "real handshakes" in message and "placeholders" in message


def test_nb00_every_version_python_knows_is_not_what_a_client_accepts():
    source = "import ssl\ndef f():\n    return [v for v in ssl.TLSVersion if v > 0]\n"
    message = _rejected("nb00.default_client_versions", source, "f")
    assert "security level" in message and "TLSv1_1" in message


def test_nb00_ignoring_the_security_level_is_right_only_where_minimum_is_tls12():
    """On Debian/Ubuntu Pythons (minimum MINIMUM_SUPPORTED) the range alone is wrong."""
    import ssl

    source = (
        "import ssl\ndef f():\n    ctx = ssl.create_default_context()\n"
        "    low = ctx.minimum_version if ctx.minimum_version > 0 else ssl.TLSVersion.TLSv1\n"
        "    high = ctx.maximum_version if ctx.maximum_version > 0 else ssl.TLSVersion.TLSv1_3\n"
        "    return [v for v in ssl.TLSVersion if low <= v <= high]\n"
    )
    result = exercises.get("nb00.default_client_versions").check(_define(source, "f"))
    if ssl.create_default_context().minimum_version >= ssl.TLSVersion.TLSv1_2:
        assert result.passed, result.message  # python.org/pyenv builds: the range is the truth
    else:
        assert not result.passed
        assert "MINIMUM_SUPPORTED" in result.message and "security level" in result.message


# --- notebook 01


def test_nb01_find_password_must_decode_the_form():
    source = (
        "def f(capture):\n    data = capture.client_bytes\n    i = data.find(b'password=')\n"
        "    return None if i < 0 else data[i + 9:].split(b'&')[0].decode()\n"
    )
    message = _rejected("nb01.find_password", source, "f")
    assert "'+' is a space" in message


def test_nb01_find_password_over_tls_is_none_not_empty():
    source = (
        "import urllib.parse\ndef f(capture):\n    data = capture.client_bytes\n"
        "    i = data.find(b'password=')\n    if i < 0:\n        return ''\n"
        "    return urllib.parse.parse_qs(data[data.rfind(b'\\n', 0, i) + 1:].decode('latin-1'))['password'][0]\n"
    )
    message = _rejected("nb01.find_password", source, "f")
    assert "over HTTPS the password is encrypted" in message and "return None" in message


def test_nb01_unseal_with_a_bare_except_is_refused_as_unsafe():
    source = (
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
        "def unseal(key, nonce, box):\n    try:\n        return AESGCM(key).decrypt(nonce, box, None)\n"
        "    except Exception:\n        return None\n"
    )
    message = _rejected("nb01.unseal", source, "unseal")
    assert "15-byte key" in message and "ValueError" in message
    assert "Catch exactly InvalidTag" in message and "swallowing" in message


def test_nb01_unseal_letting_invalid_tag_escape_gets_a_clear_sentence():
    source = (
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
        "def unseal(key, nonce, box):\n    return AESGCM(key).decrypt(nonce, box, None)\n"
    )
    message = _rejected("nb01.unseal", source, "unseal")
    assert message.startswith("InvalidTag escaped from your function")
    assert "except InvalidTag" in message and "return None" in message


def test_nb01_unseal_returning_empty_bytes_for_a_tampered_box_is_refused():
    source = (
        "from cryptography.exceptions import InvalidTag\n"
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
        "def unseal(key, nonce, box):\n    try:\n        return AESGCM(key).decrypt(nonce, box, None)\n"
        "    except InvalidTag:\n        return b''\n"
    )
    message = _rejected("nb01.unseal", source, "unseal")
    assert "return None, not b''" in message and "tampering" in message


_SESSION = (
    "from cryptography.hazmat.primitives import hashes\n"
    "from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey\n"
    "from cryptography.hazmat.primitives.kdf.hkdf import HKDF\n"
    "def session_key(my_private, peer_public):\n"
    "    shared = my_private.exchange(X25519PublicKey.from_public_bytes(peer_public))\n"
)


def test_nb01_session_key_of_16_bytes_says_how_many():
    source = _SESSION + (
        "    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b'tls course 01')"
        ".derive(shared)\n"
    )
    message = _rejected("nb01.session_key", source, "session_key")
    assert message.startswith("you returned 16 bytes, expected 32")


def test_nb01_session_key_must_not_be_the_raw_secret_or_a_plain_hash():
    raw = _rejected("nb01.session_key", _SESSION + "    return shared\n", "session_key")
    assert "raw X25519 shared secret" in raw and "HKDF" in raw
    hashed = _SESSION + (
        "    h = hashes.Hash(hashes.SHA256())\n    h.update(shared)\n    return h.finalize()\n"
    )
    message = _rejected("nb01.session_key", hashed, "session_key")
    assert "SHA-256 of the shared secret" in message and "HKDF" in message


def test_nb01_session_key_with_the_wrong_info_is_refused():
    source = _SESSION + (
        "    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b'tls course')"
        ".derive(shared)\n"
    )
    message = _rejected("nb01.session_key", source, "session_key")
    assert "info bytes" in message


# --------------------------------------------------------------------------- nb04 and nb05
# Plausible answers that run but are wrong or unsafe: each must be refused, and the message
# must say why (what the lesson teaches), not just "wrong".


def _solution(key: str):
    """The solution's function for ``key``, defined in a fresh namespace (check not run)."""
    source = SOLUTIONS[key].split("from helpers.exercises import")[0]
    namespace: dict = {"__name__": "__exercise__"}
    exec(compile(source, f"<{key}>", "exec"), namespace)  # noqa: S102 (our own notebooks)
    return namespace[exercises.get(key).name]


def _refused(key: str, answer) -> str:
    result = exercises.get(key).check(answer)
    assert result.attempted and not result.passed, f"{key} accepted a wrong answer"
    return result.message


def _encrypted_pem(key, password: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )


def test_nb04_csr_with_an_address_as_a_dns_name_is_refused():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    def make_csr_for(key, names):
        return (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256())
        )

    message = _refused("nb04.make_csr_for", make_csr_for)
    assert "127.0.0.1 is in the CSR as a DNSName" in message and "IPAddress" in message


def test_nb04_server_cert_without_aki_fails_strict_verification():
    from cryptography import x509

    solution = _solution("nb04.build_server_cert")

    def build_server_cert(ca, name):  # the solution, minus the authorityKeyIdentifier
        cert, key = solution(ca, name)
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.issuer)
            .public_key(cert.public_key())
            .serial_number(cert.serial_number)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
        )
        for ext in cert.extensions:
            if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
                builder = builder.add_extension(ext.value, ext.critical)
        return builder.sign(ca.key, cert.signature_hash_algorithm), key

    message = _refused("nb04.build_server_cert", build_server_cert)
    assert "VERIFY_X509_STRICT" in message and "Authority Key Identifier" in message


@pytest.mark.parametrize("how", ["open-then-chmod", "pathlib-then-chmod", "fd-write-then-fchmod"])
def test_nb04_key_written_then_chmodded_is_refused_as_racy(how):
    import os
    from pathlib import Path

    def write_key_securely(path, key, password):
        pem = _encrypted_pem(key, password)
        if how == "open-then-chmod":
            with open(path, "wb") as f:
                f.write(pem)
            os.chmod(path, 0o600)
        elif how == "pathlib-then-chmod":
            Path(path).write_bytes(pem)
            Path(path).chmod(0o600)
        else:  # 0600 for a new file, but an existing 0644 file holds the key before fchmod
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, pem)
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)

    message = _refused("nb04.write_key_securely", write_key_securely)
    assert "tightened the mode afterwards" in message and "-rw-r--r--" in message
    assert "*before* writing" in message


def test_nb04_key_written_with_os_open_only_keeps_an_old_files_mode():
    import os

    def write_key_securely(path, key, password):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_encrypted_pem(key, password))

    message = _refused("nb04.write_key_securely", write_key_securely)
    assert "os.open's mode applies only to new files" in message


def test_nb04_key_written_through_a_0600_temporary_file_is_accepted():
    import os

    def write_key_securely(path, key, password):
        tmp = f"{path}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_encrypted_pem(key, password))
        os.replace(tmp, path)

    result = exercises.get("nb04.write_key_securely").check(write_key_securely)
    assert result.passed, result.message


def test_nb05_version_and_cipher_without_host_name_check_is_refused():
    import socket
    import ssl

    def version_and_cipher(address, server_hostname, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        with socket.create_connection(address, timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                return tls.version(), tls.cipher()[0]

    message = _refused("nb05.version_and_cipher", version_and_cipher)
    assert "'wrong-host'" in message and "server_hostname" in message


@pytest.mark.parametrize(
    ("ciphers", "taught"),
    [
        (None, "CBC"),  # the default context still allows CBC suites in TLS 1.2
        ("AESGCM:CHACHA20", "no forward secrecy"),  # static RSA key exchange (review 5.9)
        ("AESGCM:CHACHA20:!kRSA", "Logjam"),  # DHE left in
        ("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM", "Logjam"),
    ],
)
def test_nb05_hardened_context_refuses_suites_without_ecdhe_aead(ciphers, taught):
    import ssl

    def hardened_context(cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if ciphers:
            ctx.set_ciphers(ciphers)
        return ctx

    message = _refused("nb05.hardened_context", hardened_context)
    assert taught in message


def test_nb05_mtls_request_that_swallows_the_refusal_is_refused():
    import ssl

    solution = _solution("nb05.mtls_request")

    def mtls_request(*args):
        try:
            return solution(*args)
        except ssl.SSLError:
            return b""

    message = _refused("nb05.mtls_request", mtls_request)
    assert "instead of raising ssl.SSLError" in message


def test_nb05_mtls_request_returning_text_gets_a_short_message():
    solution = _solution("nb05.mtls_request")

    def mtls_request(*args):
        return solution(*args).decode()

    message = _refused("nb05.mtls_request", mtls_request)
    assert "return the bytes the server sent" in message
    assert len(message) < 300, "the whole response must not flood the cell"


# --- nb06 · The handshake up close, and nb07 · Man in the middle: plausible wrong answers -----
# Each answer below runs, and is wrong or unsafe in a way a learner could well write; the
# check must refuse it with a sentence that teaches why.


def _sni_bytes(data: bytes) -> bytes | None:
    """Exercise 06.1 done right up to the last step: the name as raw bytes."""
    import io

    r = io.BytesIO(data[9:])
    r.read(2 + 32)
    for length_bytes in (1, 2, 1):
        r.read(int.from_bytes(r.read(length_bytes), "big"))
    ext = io.BytesIO(r.read(int.from_bytes(r.read(2), "big")))
    while header := ext.read(4):
        body = ext.read(int.from_bytes(header[2:], "big"))
        if header[:2] == b"\x00\x00":
            return body[5:]
    return None


def _key_iv_always_sha256(secret: bytes, cipher_suite: str) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    def label(name: bytes, length: int) -> bytes:
        full = b"tls13 " + name
        info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
        return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(secret)

    key_length = 16 if "AES_128" in cipher_suite else 32
    return label(b"key", key_length), label(b"iv", 12)


def _pin(cert) -> str:
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization

    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _pinned_get_toctou(url: str, pin: str, cafile: str) -> str:
    """Checks the pin on one connection, fetches over another (review row 7.2)."""
    import ssl
    from urllib.parse import urlsplit

    import requests
    from cryptography import x509

    parts = urlsplit(url)
    pem = ssl.get_server_certificate((parts.hostname, parts.port), ca_certs=cafile)
    if _pin(x509.load_pem_x509_certificate(pem.encode())) != pin:
        raise ValueError("pin mismatch")
    return requests.get(url, verify=cafile, timeout=5).text


def _pinned_get_pin_after_request(url: str, pin: str, cafile: str) -> str:
    import http.client
    import ssl
    from urllib.parse import urlsplit

    from cryptography import x509

    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=5)
    try:
        conn.request("GET", parts.path or "/")  # the request leaves first...
        der = conn.sock.getpeercert(binary_form=True)
        if _pin(x509.load_der_x509_certificate(der)) != pin:  # ...then the pin is checked
            raise ValueError("pin mismatch")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _pinned_get_no_verification(url: str, pin: str, cafile: str) -> str:
    import http.client
    import ssl
    from urllib.parse import urlsplit

    from cryptography import x509

    parts = urlsplit(url)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # "the pin is enough"
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=5)
    try:
        conn.connect()
        der = conn.sock.getpeercert(binary_form=True)
        if _pin(x509.load_der_x509_certificate(der)) != pin:
            raise ValueError("pin mismatch")
        conn.request("GET", parts.path or "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _serialization():
    from cryptography.hazmat.primitives import serialization

    return serialization


def _spki_der(cert) -> bytes:
    s = _serialization()
    return cert.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)


def _b64_sha(data: bytes, name: str = "sha256") -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.new(name, data).digest()).decode()


def _spki_pin_whole_certificate(cert) -> str:
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization

    der = cert.public_bytes(serialization.Encoding.DER)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _spki_pin_hex(cert) -> str:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


NB06_NB07_WRONG_ANSWERS = {
    "nb06-sni-as-bytes": ("nb06.server_name_from", _sni_bytes, "decode the name to str"),
    "nb06-sni-empty-string": (
        "nb06.server_name_from",
        lambda data: (_sni_bytes(data) or b"").decode(),
        "carries no server_name extension, you returned ''",
    ),
    "nb06-sni-wrong-signature": (
        "nb06.server_name_from",
        lambda data, offset: None,
        "your function must take (data)",
    ),
    "nb06-keys-always-sha256": (
        "nb06.traffic_key_and_iv",
        _key_iv_always_sha256,
        "the hash must be the suite's own (SHA384)",
    ),
    "nb06-keys-always-16-bytes": (
        "nb06.traffic_key_and_iv",
        lambda secret, suite: _key_iv_always_sha256(secret, "AES_128"),
        "the key length comes from the AEAD",
    ),
    "nb06-round-trips-from-the-version": (
        "nb06.round_trips",
        lambda capture: 1 if capture.version == "TLSv1.3" else 2,
        "a resumed TLS 1.2 handshake (the abbreviated handshake, RFC 5246 §7.3",
    ),
    "nb06-round-trips-returns-none": (
        "nb06.round_trips",
        lambda capture: None,
        "returned None",
    ),
    "nb07-pin-of-the-whole-certificate": (
        "nb07.spki_pin",
        _spki_pin_whole_certificate,
        "hash of the whole certificate; a pin hashes only its SubjectPublicKeyInfo",
    ),
    "nb07-pin-in-hex": ("nb07.spki_pin", _spki_pin_hex, "RFC 7469 pins are base64, not hex"),
    "nb07-pin-of-the-bare-key": (
        "nb07.spki_pin",
        lambda cert: _b64_sha(
            cert.public_key().public_bytes(
                _serialization().Encoding.X962, _serialization().PublicFormat.UncompressedPoint
            )
        ),
        "a pin hashes the whole DER SubjectPublicKeyInfo",
    ),
    "nb07-pin-with-sha1": (
        "nb07.spki_pin",
        lambda cert: _b64_sha(_spki_der(cert), "sha1"),
        "RFC 7469 pins (pin-sha256) use SHA-256",
    ),
    "nb07-pinned-get-toctou": (
        "nb07.pinned_get",
        _pinned_get_toctou,
        "time-of-check/time-of-use",
    ),
    "nb07-pinned-get-pin-after-request": (
        "nb07.pinned_get",
        _pinned_get_pin_after_request,
        "check the pin right after the handshake, before the request",
    ),
    "nb07-pinned-get-verification-off": (
        "nb07.pinned_get",
        _pinned_get_no_verification,
        "keep certificate verification on",
    ),
}


@pytest.mark.parametrize("case", sorted(NB06_NB07_WRONG_ANSWERS))
def test_nb06_nb07_checks_refuse_plausible_wrong_answers(case):
    key, answer, teaching = NB06_NB07_WRONG_ANSWERS[case]
    result = exercises.get(key).check(answer)
    assert result.attempted and not result.passed, f"{case} passed: {result.message}"
    assert teaching in result.message, result.message


# ------------------------------------------------------------------------------ nb02 and nb03
# Plausible wrong or unsafe answers for notebooks 02 and 03, each refused with a sentence
# that teaches (review rows "nb02.*" and "nb03.*", issue 11 §3).


def _nb0203_refused(key: str, source: str, name: str) -> str:
    """Define the learner's function as a notebook cell would, check it, return the message."""
    namespace: dict = {}
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 (our own test code)
    result = exercises.get(key).check(namespace[name])
    assert result.attempted and not result.passed, f"{key} accepted: {result.message}"
    return result.message


_NB02_CODE_WALK = """
    except requests.exceptions.SSLError as error:
        cause = error.args[0].reason.args[0]
        return getattr(cause, "verify_code", None)
    return None
"""

NB02_NB03_WRONG_ANSWERS = {
    # nb02.verify_code_of: the bundle never reaches requests (certifi decides): dedicated
    # message first, not "expired should give 10, not 20".
    "nb02 verify_code_of forgets ca_bundle": (
        "nb02.verify_code_of",
        "verify_code_of",
        "import requests\n\ndef verify_code_of(url, ca_bundle):\n    try:\n"
        "        requests.get(url, timeout=5).close()" + _NB02_CODE_WALK,
        "your function does not trust ca_bundle",
    ),
    # ... or verification switched off, so nothing ever fails.
    "nb02 verify_code_of with verify=False": (
        "nb02.verify_code_of",
        "verify_code_of",
        "import requests\n\ndef verify_code_of(url, ca_bundle):\n    try:\n"
        "        requests.get(url, verify=False, timeout=5).close()" + _NB02_CODE_WALK,
        "verify=False, or an except that swallows every error",
    ),
    # ... or every error swallowed.
    "nb02 verify_code_of swallows errors": (
        "nb02.verify_code_of",
        "verify_code_of",
        "import requests\n\ndef verify_code_of(url, ca_bundle):\n    try:\n"
        "        requests.get(url, verify=ca_bundle, timeout=5).close()\n"
        "    except Exception:\n        return None\n    return None\n",
        "an except that swallows every error",
    ),
    # nb02.combined_bundle: files glued without newlines.
    "nb02 combined_bundle concatenates blindly": (
        "nb02.combined_bundle",
        "combined_bundle",
        "from pathlib import Path\n\ndef combined_bundle(paths, destination):\n"
        "    Path(destination).write_bytes(b''.join(Path(p).read_bytes() for p in paths))\n"
        "    return Path(destination)\n",
        "look at the joins",
    ),
    # ... or appended to yesterday's bundle: a stale root stays trusted.
    "nb02 combined_bundle appends to an old bundle": (
        "nb02.combined_bundle",
        "combined_bundle",
        "from pathlib import Path\n\ndef combined_bundle(paths, destination):\n"
        "    with open(destination, 'ab') as out:\n        for p in paths:\n"
        "            pem = Path(p).read_bytes()\n"
        "            out.write(pem if pem.endswith(b'\\n') else pem + b'\\n')\n"
        "    return Path(destination)\n",
        "not appending",
    ),
    # nb02.lab_session: verification off "to make it work".
    "nb02 lab_session with verify=False": (
        "nb02.lab_session",
        "lab_session",
        "import requests\n\ndef lab_session(ca_bundle):\n    session = requests.Session()\n"
        "    session.verify = False\n    session.trust_env = False\n    return session\n",
        "verify=False does not choose whom to trust",
    ),
    # ... session.verify alone loses to REQUESTS_CA_BUNDLE (psf/requests #3829).
    "nb02 lab_session with session.verify only": (
        "nb02.lab_session",
        "lab_session",
        "import requests\n\ndef lab_session(ca_bundle):\n    session = requests.Session()\n"
        "    session.verify = str(ca_bundle)\n    return session\n",
        "the environment variable won over session.verify",
    ),
    # ... or the process-wide environment changed to suit one session.
    "nb02 lab_session sets REQUESTS_CA_BUNDLE": (
        "nb02.lab_session",
        "lab_session",
        "import os\nimport requests\n\ndef lab_session(ca_bundle):\n"
        "    os.environ['REQUESTS_CA_BUNDLE'] = str(ca_bundle)\n    return requests.Session()\n",
        "your function changed the environment (REQUESTS_CA_BUNDLE)",
    ),
    # nb03.sans_of: DNS names only, IP addresses forgotten.
    "nb03 sans_of with DNS names only": (
        "nb03.sans_of",
        "sans_of",
        "from cryptography import x509\n\ndef sans_of(cert):\n    try:\n"
        "        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)\n"
        "    except x509.ExtensionNotFound:\n        return []\n"
        "    return ext.value.get_values_for_type(x509.DNSName)\n",
        "you returned ['shop.lab.localhost', '*.api.lab.localhost']",
    ),
    # ... or the Common Name counted as a name (what RFC 9525 and browsers refuse).
    "nb03 sans_of falls back to the CN": (
        "nb03.sans_of",
        "sans_of",
        "from cryptography import x509\n\ndef sans_of(cert):\n    try:\n"
        "        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)\n"
        "    except x509.ExtensionNotFound:\n"
        "        return [a.value for a in cert.subject.get_attributes_for_oid("
        "x509.NameOID.COMMON_NAME)]\n"
        "    return [str(g.value) for g in ext.value]\n",
        "the CN is not a SAN",
    ),
    # nb03.is_issued_by: names compared, signature never checked: a forgery passes.
    "nb03 is_issued_by compares names only": (
        "nb03.is_issued_by",
        "is_issued_by",
        "def is_issued_by(child, parent):\n    return child.issuer == parent.subject\n",
        "a forged leaf whose issuer *name* is the lab intermediate's",
    ),
    # nb03.alert_level: the old absolute thresholds make a fresh 6-day certificate critical.
    "nb03 alert_level with absolute 7/30-day thresholds": (
        "nb03.alert_level",
        "alert_level",
        "import datetime as dt\n\ndef alert_level(cert, now):\n"
        "    if now < cert.not_valid_before_utc:\n        return 'not yet valid'\n"
        "    if now > cert.not_valid_after_utc:\n        return 'expired'\n"
        "    left = (cert.not_valid_after_utc - now) / dt.timedelta(days=1)\n"
        "    if left < 7:\n        return 'critical'\n"
        "    if left < 30:\n        return 'warn'\n    return 'ok'\n",
        "a 6-day certificate issued an hour ago gave 'critical'",
    ),
    # ... and the clock instead of the `now` it was given.
    "nb03 alert_level reads the clock": (
        "nb03.alert_level",
        "alert_level",
        "import datetime as dt\n\ndef alert_level(cert, now):\n"
        "    now = dt.datetime.now(dt.timezone.utc)\n"
        "    if now < cert.not_valid_before_utc:\n        return 'not yet valid'\n"
        "    if now > cert.not_valid_after_utc:\n        return 'expired'\n"
        "    left = (cert.not_valid_after_utc - now) / "
        "(cert.not_valid_after_utc - cert.not_valid_before_utc)\n"
        "    return 'critical' if left < 0.1 else 'warn' if left < 1 / 3 else 'ok'\n",
        "use the `now` argument, not datetime.now()",
    ),
}


# verify=False cases
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("case", sorted(NB02_NB03_WRONG_ANSWERS))
def test_nb02_nb03_checks_refuse_plausible_wrong_answers(case):
    key, name, source, teaching = NB02_NB03_WRONG_ANSWERS[case]
    message = _nb0203_refused(key, source, name)
    assert teaching in message, message


def test_nb03_alert_level_with_absolute_thresholds_is_refused_for_long_certificates_too():
    """Fixed 7/30-day rules that special-case short certificates still miss a 200-day one."""
    source = (
        "import datetime as dt\n\ndef alert_level(cert, now):\n"
        "    if now < cert.not_valid_before_utc:\n        return 'not yet valid'\n"
        "    if now > cert.not_valid_after_utc:\n        return 'expired'\n"
        "    life = (cert.not_valid_after_utc - cert.not_valid_before_utc) / dt.timedelta(days=1)\n"
        "    left = (cert.not_valid_after_utc - now) / dt.timedelta(days=1)\n"
        "    if life < 30:\n        return 'ok' if left > life / 3 else 'warn'\n"
        "    return 'critical' if left < 7 else 'warn' if left < 30 else 'ok'\n"
    )
    message = _nb0203_refused("nb03.alert_level", source, "alert_level")
    assert "a 200-day certificate with 60 days left gave 'ok'" in message, message


# --- notebook 08: wrong or insecure answers the checks must refuse, with a reason that teaches


def _nb08_refused(key: str, answer) -> str:
    result = exercises.get(key).check(answer)
    assert result.attempted and not result.passed, f"{key} accepted a wrong answer"
    return result.message


def _nb08_versions(host, port, *, newest_first=False):
    import socket
    import ssl
    import warnings

    accepted = []
    for version in (
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_3,
    ):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
        try:
            with (
                socket.create_connection((host, port), timeout=2) as raw,
                ctx.wrap_socket(raw, server_hostname=host) as tls,
            ):
                accepted.append(tls.version())
        except (ssl.SSLError, OSError):
            pass
    return accepted[::-1] if newest_first else accepted


def test_nb08_accepted_versions_must_be_oldest_first():
    message = _nb08_refused(
        "nb08.accepted_versions", lambda h, p: _nb08_versions(h, p, newest_first=True)
    )
    assert "(oldest first)" in message and "['TLSv1.3', 'TLSv1.2']" in message, message


def _nb08_letter(protocol, key_exchange, cipher, caps, *, zero_rule=True, caps_replace=False):
    from helpers.probe import LETTERS

    score = 0.3 * protocol + 0.3 * key_exchange + 0.4 * cipher
    if zero_rule and 0 in (protocol, key_exchange, cipher):
        score = 0.0
    letter = next(letter for minimum, letter in LETTERS if score >= minimum)
    if caps_replace and caps:
        return caps[-1]  # "the last rule wins": a cap of B would lift a C
    for cap in caps:
        if "FEDCBA".index(cap) < "FEDCBA".index(letter):
            letter = cap
    return letter


@pytest.mark.parametrize(
    ("variant", "teaching"),
    [
        ({"zero_rule": False}, "overall_letter(100, 0, 100, []) returned 'B', expected 'F'"),
        (
            {"caps_replace": True},
            "overall_letter(90, 90, 90, ['C', 'B']) returned 'B', expected 'C'",
        ),
    ],
)
def test_nb08_overall_letter_refuses_a_missing_zero_rule_and_caps_that_lift(variant, teaching):
    message = _nb08_refused(
        "nb08.overall_letter", lambda p, k, c, caps: _nb08_letter(p, k, c, caps, **variant)
    )
    assert teaching in message, message


def _nb08_is_revoked(cert, crl, issuer, *, signature=True, freshness=True):
    import datetime

    if crl.issuer != issuer.subject:
        raise ValueError("another CA's CRL")
    if signature and not crl.is_signature_valid(issuer.public_key()):
        raise ValueError("forged")
    if freshness and crl.next_update_utc < datetime.datetime.now(datetime.timezone.utc):  # noqa: UP017
        raise ValueError("stale")
    return crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


@pytest.mark.parametrize(
    ("variant", "teaching"),
    [
        ({"signature": False}, "somebody else's signature"),
        ({"freshness": False}, "whose nextUpdate passed 3 days ago returned False"),  # 8.16
    ],
)
def test_nb08_is_revoked_refuses_forged_and_stale_crls(variant, teaching):
    message = _nb08_refused(
        "nb08.is_revoked", lambda cert, crl, issuer: _nb08_is_revoked(cert, crl, issuer, **variant)
    )
    assert teaching in message, message


def _nb08_server(
    certfile,
    keyfile,
    *,
    ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
    hsts="max-age=31536000",
    minimum="TLSv1_2",
    server=True,
    legacy=False,
):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    if legacy:  # the notebook's legacy bank: static RSA key transport only
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384")
    else:
        ctx.minimum_version = getattr(ssl.TLSVersion, minimum)
        ctx.set_ciphers(ciphers)
    if server:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx, ({"Strict-Transport-Security": hsts} if hsts else {})


NB08_UNSAFE_SERVERS = {
    "legacy bank as it is": ({"legacy": True}, "grades B", "no-forward-secrecy"),
    "static RSA next to ECDHE": (
        {"ciphers": "ECDHE+AESGCM:AES128-GCM-SHA256"},
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "no forward secrecy",
    ),
    "CBC suites kept": ({"ciphers": "ECDHE+AESGCM:ECDHE+AES"}, "_CBC_", "only AEAD suites"),
    "security level 0": ({"ciphers": "ECDHE+AESGCM:@SECLEVEL=0"}, "security level 0", "probes"),
    "no TLS 1.2 floor": ({"minimum": "MINIMUM_SUPPORTED"}, "TLS 1.0", "1.1"),
    "no HSTS": ({"hsts": None}, "A, not yet A+", "Strict-Transport-Security"),
    "HSTS for a day": ({"hsts": "max-age=86400"}, "max-age is 86400 s", "six months"),
    "a client context": ({"server": False}, "not a server context", "PROTOCOL_TLS_SERVER"),
}


@pytest.mark.parametrize("case", sorted(NB08_UNSAFE_SERVERS))
def test_nb08_hardened_server_refuses_weak_or_unsafe_servers(case):
    options, *teaching = NB08_UNSAFE_SERVERS[case]
    message = _nb08_refused(
        "nb08.hardened_server", lambda certfile, keyfile: _nb08_server(certfile, keyfile, **options)
    )
    assert all(t in message for t in teaching), message


def test_nb08_hardened_server_says_what_to_return():
    message = _nb08_refused("nb08.hardened_server", lambda certfile, keyfile: None)
    assert "return a tuple (context, headers)" in message, message
    only_ctx = _nb08_refused(
        "nb08.hardened_server", lambda certfile, keyfile: _nb08_server(certfile, keyfile)[0]
    )
    assert "return a tuple (context, headers), not SSLContext" in only_ctx, only_ctx


def test_nb08_hardened_server_without_a_certificate_is_told_to_load_one():
    import ssl

    def no_certificate(certfile, keyfile):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx, {"Strict-Transport-Security": "max-age=31536000"}

    message = _nb08_refused("nb08.hardened_server", no_certificate)
    assert "ctx.load_cert_chain(certfile, keyfile)" in message, message


# --- nb04 / nb05 follow-up: functions that return None by design, and declared parameters


def test_returns_none_by_design_drops_the_forgotten_return_prefix():
    def checker(answer):
        answer()
        raise AssertionError("your code wrote the key first and chmod-ed it after")

    plain = exercises.Exercise("nbXX", "demo", checker).check(lambda: None)
    assert plain.message.startswith("your function returned None: your code wrote"), plain.message
    by_design = exercises.Exercise("nbXX", "demo", checker, returns_none=True).check(lambda: None)
    assert by_design.message == "your code wrote the key first and chmod-ed it after"

    def choking(answer):
        list(answer())  # a checker that chokes on the None it was given

    result = exercises.Exercise("nbXX", "demo", choking, returns_none=True).check(lambda: None)
    assert "returned None" not in result.message
    assert result.message.startswith("the check could not run"), result.message


def test_nb04_write_key_securely_is_not_blamed_for_returning_none():
    import os

    assert exercises.get("nb04.write_key_securely").returns_none

    def write_key_securely(path, key, password):  # racy: written 0644, then chmod-ed
        with open(path, "wb") as f:
            f.write(_encrypted_pem(key, password))
        os.chmod(path, 0o600)

    message = _refused("nb04.write_key_securely", write_key_securely)
    assert not message.startswith("your function returned None"), message
    assert "tightened the mode afterwards" in message


@pytest.mark.parametrize(
    ("key", "params"),
    [
        ("nb04.make_csr_for", ("key", "names")),
        ("nb04.build_server_cert", ("ca", "name")),
        ("nb04.write_key_securely", ("path", "key", "password")),
        ("nb05.version_and_cipher", ("address", "server_hostname", "cafile")),
        ("nb05.hardened_context", ("cafile",)),
        (
            "nb05.mtls_request",
            ("address", "server_hostname", "cafile", "certfile", "keyfile", "request"),
        ),
    ],
)
def test_nb04_nb05_declared_params_match_the_stubs_and_name_them(key, params):
    ex = exercises.get(key)
    assert ex.params == params
    assert ex.stub_params() == params  # the lesson's stub says the same
    result = ex.check(lambda a, b, c, d, e, f, g: None)  # wrong: seven parameters
    assert result.attempted and not result.passed
    want = "(" + ", ".join(params) + ")"
    assert result.message.startswith(f"your function must take {want}, like the stub"), (
        result.message
    )


# nb09 --- notebook 09: answers that work through the proxy or for the one host, but are unsafe


def _nb09_refused(key: str, answer) -> str:
    result = exercises.get(key).check(answer)
    assert result.attempted and not result.passed, f"{key} accepted an unsafe answer"
    return result.message


def _nb09_bundle(roots, inspection_ca, folder, *, keep_roots=True, in_place=False):
    from pathlib import Path

    inspection = Path(inspection_ca).read_bytes()
    if in_place:  # "append the company root to certifi's cacert.pem"
        with open(roots, "ab") as f:
            f.write(b"\n" + inspection)
        return roots
    bundle = Path(folder, "bundle.pem")
    bundle.write_bytes((Path(roots).read_bytes() + b"\n" if keep_roots else b"") + inspection)
    return str(bundle)


@pytest.mark.parametrize(
    ("answer", "teaching"),
    [
        (lambda r, i, f: False, "switches verification off for every site"),
        (
            lambda r, i, f: _nb09_bundle(r, i, f, keep_roots=False),
            "not the inspection root instead",
        ),
        (lambda r, i, f: _nb09_bundle(r, i, f, in_place=True), "changed the roots file itself"),
    ],
    ids=["verify-false", "inspection-root-only", "appended-to-roots"],
)
def test_nb09_work_bundle_refuses_unsafe_bundles(answer, teaching):
    message = _nb09_refused("nb09.work_bundle", answer)
    assert teaching in message, message


def _nb09_session(url, cafile, *, mount=None, verify_server=True, use_cafile=True):
    import ssl

    import requests
    from requests.adapters import HTTPAdapter

    from helpers.lab import get_lab

    class ContextAdapter(HTTPAdapter):
        def __init__(self, context, **kwargs):
            self.context = context
            super().__init__(**kwargs)

        def init_poolmanager(self, *args, **kwargs):
            kwargs["ssl_context"] = self.context
            return super().init_poolmanager(*args, **kwargs)

    ctx = ssl.create_default_context(cafile=cafile if use_cafile else str(get_lab().ca_bundle))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=1")
    if not verify_server:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    session = requests.Session()
    session.verify = cafile
    session.mount(mount or url, ContextAdapter(ctx))
    return session


def _nb09_client(cafile, exempt, *, mount=None, strict_elsewhere=True, use_cafile=True):
    import ssl

    import httpx

    from helpers.lab import get_lab

    roots = cafile if use_cafile else str(get_lab().ca_bundle)
    strict = ssl.create_default_context(cafile=roots)
    if strict_elsewhere:
        strict.verify_flags |= ssl.VERIFY_X509_STRICT
    else:
        strict.verify_flags &= ~ssl.VERIFY_X509_STRICT  # "3.11 behaviour is fine for everyone"
    downgrade = ssl.create_default_context(cafile=roots)
    downgrade.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return httpx.Client(
        verify=strict, mounts={mount or exempt: httpx.HTTPTransport(verify=downgrade)}
    )


#: The two answers that must keep a downgrade to one host: each takes two arguments, and
#: the wrong answers below are built by passing them on with one unsafe option.
_NB09_SESSION = ("nb09.legacy_session", _nb09_session)  # legacy_session(url, cafile)
_NB09_CLIENT = ("nb09.strict_client", _nb09_client)  # strict_client(cafile, exempt)


@pytest.mark.parametrize(
    ("exercise", "options", "teaching"),
    [
        (_NB09_SESSION, {"mount": "https://"}, "covers more than the one URL"),
        (_NB09_SESSION, {"mount": "https://dh-1024.lab.localhost"}, "a prefix without the port"),
        (_NB09_SESSION, {"verify_server": False}, "does not verify the server"),
        (_NB09_SESSION, {"use_cafile": False}, "does not verify the server with cafile"),
        (_NB09_CLIENT, {"mount": "all://"}, "does not verify like Python 3.13 everywhere else"),
        (
            _NB09_CLIENT,
            {"strict_elsewhere": False},
            "does not verify like Python 3.13 everywhere else",
        ),
        (
            _NB09_CLIENT,
            {"mount": "https://strict-no-aki.lab.localhost"},
            "a pattern without the port",
        ),
        (_NB09_CLIENT, {"use_cafile": False}, "does not verify with cafile"),
    ],
    ids=[
        "session-mounted-on-https",
        "session-mounted-without-port",
        "session-no-verification",
        "session-ignores-cafile",
        "client-mounted-on-all",
        "client-not-strict-elsewhere",
        "client-mounted-without-port",
        "client-ignores-cafile",
    ],
)
def test_nb09_a_downgrade_beyond_its_one_host_is_refused(exercise, options, teaching):
    key, build = exercise
    message = _nb09_refused(key, lambda first, second: build(first, second, **options))
    assert teaching in message, message


# nb10 --- notebook 10: a renewal time that works on the day but herds clients or reads the clock


def _nb10_refused(key: str, answer) -> str:
    result = exercises.get(key).check(answer)
    assert result.attempted and not result.passed, f"{key} accepted an unsafe answer"
    return result.message


def _nb10_when(cert, window, now, *, pick="random", clock=False, ari=True, floor=True):
    """A renewal time built like the solution, with one thing done wrong on request."""
    import datetime as dt
    import random

    if clock:  # reads the computer's clock instead of the `now` it was given
        now = dt.datetime.now(dt.UTC)
    if window is None or not ari:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        due = start + (end - start) * 2 / 3
        return max(due, now) if floor else due
    span = window.end - window.start
    moment = {
        "random": window.start + span * random.random(),
        "start": window.start,
        "end": window.end,
    }[pick]
    return max(moment, now) if floor else moment


@pytest.mark.parametrize(
    ("options", "teaching"),
    [
        ({"pick": "start"}, "always return the start of the window"),
        ({"pick": "end"}, "always return the end of the window"),
        ({"clock": True}, "did you compare with datetime.now() instead of now?"),
        ({"ari": False}, "follow the CA's window"),
        ({"floor": False}, "renew now, return now"),
    ],
    ids=["window-start", "window-end", "wall-clock", "ignores-ari", "time-in-the-past"],
)
def test_nb10_renewal_time_refuses_herding_clock_and_past_answers(options, teaching):
    message = _nb10_refused(
        "nb10.renewal_time", lambda cert, window, now: _nb10_when(cert, window, now, **options)
    )
    assert teaching in message, message


def test_nb10_renewal_time_refuses_the_wall_clock_for_now():
    import datetime as dt

    def wall(cert, window, now):
        when = _nb10_when(cert, window, now)
        return dt.datetime.now(dt.UTC) if when == now else when

    message = _nb10_refused("nb10.renewal_time", wall)
    assert "not the `now` the check passed you" in message, message


def test_nb10_renewal_time_refuses_naive_datetimes():
    message = _nb10_refused(
        "nb10.renewal_time",
        lambda cert, window, now: _nb10_when(cert, window, now).replace(tzinfo=None),
    )
    assert "aware UTC datetime" in message, message


def _nb10_finalize(account_key, certificate_key, names, url, nonce, kid, **wrong):
    """A finalize body built like the solution, with one thing done wrong on request."""
    import json

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.hazmat.primitives.serialization import Encoding

    from helpers.acme.jws import b64url

    csr_key = account_key if wrong.get("same_key") else certificate_key
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=True)
        .sign(csr_key, hashes.SHA256())
    )
    alg = "none" if wrong.get("unsigned") else "ES256"
    header = {"alg": alg, "kid": kid, "nonce": wrong.get("replayed", nonce), "url": url}
    protected = b64url(json.dumps(header).encode())
    payload = b64url(json.dumps({"csr": b64url(csr.public_bytes(Encoding.DER))}).encode())
    if wrong.get("unsigned"):
        return {"protected": protected, "payload": payload, "signature": ""}
    signer = certificate_key if wrong.get("cert_key_signs") else account_key
    der = signer.sign(f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    if wrong.get("der"):
        signature = der
    else:
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {"protected": protected, "payload": payload, "signature": b64url(signature)}


@pytest.mark.parametrize(
    ("wrong", "teaching"),
    [
        ({"cert_key_signs": True}, "your JWS is signed with the certificate key"),
        ({"same_key": True}, "your CSR carries the account key"),
        ({"unsigned": True}, '"alg": "none"'),
        ({"der": True}, "not the DER form"),
    ],
    ids=["signed-with-certificate-key", "account-key-in-csr", "alg-none", "der-signature"],
)
def test_nb10_finalize_request_refuses_unsafe_requests(wrong, teaching):
    message = _nb10_refused(
        "nb10.finalize_request",
        lambda *args: _nb10_finalize(*args, **wrong),
    )
    assert teaching in message, message
    assert "the lab's ACME server answered" in message, message  # it was really sent


def test_nb10_finalize_request_refuses_a_reused_nonce():
    seen: list[str] = []

    def replaying(account_key, certificate_key, names, url, nonce, kid):
        seen.append(nonce)  # keeps the first nonce it was given, and sends it again
        return _nb10_finalize(
            account_key, certificate_key, names, url, nonce, kid, replayed=seen[0]
        )

    message = _nb10_refused("nb10.finalize_request", replaying)
    assert "carries the nonce of the first" in message, message
    assert "badNonce" in message, message


def _nb10_install(chain_pem, key_pem, live, *, how="safe"):
    """Install the two files like the solution, or in one of the unsafe ways on request."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    for name, data in (("privkey.pem", key_pem), ("fullchain.pem", chain_pem)):
        target = Path(live, name)
        if how == "in-place":  # open the live file and write over it
            target.write_bytes(data)
            continue
        if how == "chmod-after":  # created with the umask's 0644, restricted afterwards
            new = Path(live, f".{name}.new")
            new.write_bytes(data)
            os.chmod(new, 0o600)
            os.replace(new, target)
            continue
        fd, new = tempfile.mkstemp(dir=None if how == "via-tmp" else live)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if how == "remove-first":
            os.remove(target)
        if how == "leftover":
            shutil.copy2(new, Path(live, name + ".bak"))
        os.replace(new, target)


@pytest.mark.parametrize(
    ("how", "teaching"),
    [
        ("in-place", "opened the live privkey.pem for writing"),
        ("chmod-after", "you restricted it later, but whoever opened it in that moment"),
        ("remove-first", "removed the live privkey.pem before putting the new one in place"),
        ("via-tmp", "write it in the live directory itself"),
        ("leftover", "temporary files are copies of the key or chain"),
    ],
)
def test_nb10_install_renewal_refuses_racy_installs(how, teaching):
    message = _nb10_refused(
        "nb10.install_renewal",
        lambda chain_pem, key_pem, live: _nb10_install(chain_pem, key_pem, live, how=how),
    )
    assert teaching in message, message


def test_nb10_install_renewal_accepts_the_safe_way_under_any_umask():
    import os

    old = os.umask(0o077)  # the check sets the usual 022 itself, whatever the caller's umask
    try:
        result = exercises.get("nb10.install_renewal").check(_nb10_install)
    finally:
        os.umask(old)
    assert result.passed, result.message
