"""Checks for the exercises of notebook 09 · When TLS fails at work.

Both checks connect for real: through the lab's inspecting proxy (:mod:`helpers.lab.proxy`) and
to the lab's ``dh-1024`` server. Each refuses an answer that *works* for the case in front of
it but is unsafe or fragile elsewhere, and says why.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from . import exercise


def _outcome(call) -> tuple[bool, str]:
    """``(True, "200")`` or ``(False, "<kind> <code>: <OpenSSL's words>")`` for one request."""
    from ..diagnose import explain

    try:
        response = call()
        response.close()  # requests and httpx both have close(); the status is already read
        return True, str(response.status_code)
    except Exception as error:  # noqa: BLE001 - every failure becomes one line for the learner
        d = explain(error)
        words = d.verify_message or d.message.split("] ", 1)[-1].split(" (_ssl.c:")[0]
        code = f" {d.verify_code}" if d.verify_code else ""
        return False, f"{d.kind}{code}: {words}"


# ------------------------------------------------------------------ work_bundle


@exercise(
    "nb09",
    params=("roots", "inspection_ca", "folder"),
    hints=[
        "Read the bytes of both files, and write them one after the other to a NEW file in "
        "folder (Path(folder) / 'work-bundle.pem'); return its path.",
        "Never open the roots file for writing or appending: at work it is certifi's "
        "cacert.pem, which the next 'pip install -U certifi' replaces, and which every "
        "program in that environment reads.",
        "Mind the join: a PEM file without a final newline glues its END line to the next "
        "BEGIN line. Loading each file with x509.load_pem_x509_certificates() and writing "
        "cert.public_bytes(Encoding.PEM) for each avoids that, and refuses a file that holds "
        "no certificates.",
    ],
)
def work_bundle(answer):
    import requests

    from ..lab import get_lab

    lab = get_lab()
    with tempfile.TemporaryDirectory(prefix="tls-course-nb09-") as tmp:
        roots = Path(tmp, "roots.pem")  # stands in for certifi's cacert.pem
        roots.write_bytes(lab.ca_bundle.read_bytes())
        before = roots.read_bytes()
        folder = Path(tmp, "out")
        folder.mkdir()
        got = answer(str(roots), str(lab.proxy.inspection_ca), str(folder))
        assert got is not False, (
            "you returned False: as verify=, that switches verification off for every site. "
            "Anybody on the path (not just your company's proxy) could then read and change "
            "your traffic. Return the path of a bundle instead"
        )
        assert isinstance(got, (str, Path)), f"return the bundle's path (a str), not {type(got).__name__}"
        assert roots.read_bytes() == before, (
            "your function changed the roots file itself: at work that file is certifi's "
            "cacert.pem, which the next 'pip install -U certifi' replaces (your fix vanishes) "
            "and which every program using that environment reads (they all trust your "
            "proxy now). Write a new file in folder"
        )
        bundle = Path(got)
        assert bundle.is_file(), f"{bundle} is not a file: write the bundle, then return its path"
        try:
            ssl.create_default_context(cafile=str(bundle))
        except ssl.SSLError as exc:
            raise AssertionError(
                f"OpenSSL cannot read your bundle ({exc.reason or exc}): look at the join "
                "between the two files"
            ) from None
        url = lab.url("valid")
        proxies = {"https": lab.proxy.inspecting}
        ok, said = _outcome(lambda: requests.get(url, verify=str(bundle), proxies=proxies, timeout=5))
        assert ok, f"through the inspecting proxy your bundle gives {said}: is the inspection root in it?"
        ok, said = _outcome(lambda: requests.get(url, verify=str(bundle), timeout=5))
        assert ok, (
            f"through the proxy it works, but direct (at home, or for a site the proxy does not "
            f"inspect) your bundle gives {said}: it must hold the roots you trusted before AND "
            "the inspection root, not the inspection root instead of them"
        )


# ------------------------------------------------------------------ legacy_session


def _contexts(adapter) -> list[ssl.SSLContext]:
    """Every SSLContext a requests adapter holds (on itself or for its pool manager)."""
    found = [v for v in vars(adapter).values() if isinstance(v, ssl.SSLContext)]
    manager = getattr(adapter, "poolmanager", None)
    if manager is not None:
        kw = getattr(manager, "connection_pool_kw", {})
        found += [v for v in kw.values() if isinstance(v, ssl.SSLContext)]
    return found


@exercise(
    "nb09",
    params=("url", "cafile"),
    hints=[
        "Subclass requests.adapters.HTTPAdapter, override init_poolmanager(self, *args, "
        "**kwargs) to set kwargs['ssl_context'] = your context, then call super(): the "
        "ContextAdapter of this notebook.",
        "The context: ssl.create_default_context(cafile=cafile), then "
        "ctx.set_ciphers('DEFAULT:@SECLEVEL=1'): level 1 accepts 1024-bit DH. Keep "
        "verification on (check_hostname and CERT_REQUIRED are the defaults: leave them).",
        "Mount it on that URL only: session.mount(url, adapter) with the full URL "
        "(scheme, host, port and the trailing '/'), never session.mount('https://', ...). "
        "Pass verify=cafile too (session.verify = cafile), since requests also loads it.",
    ],
)
def legacy_session(answer):
    import certifi

    from ..lab import get_lab

    lab = get_lab()
    url = lab.url("dh-1024")
    session = answer(url, str(lab.ca_bundle))
    assert session is not None and hasattr(session, "get_adapter"), (
        f"return a requests.Session, not {type(session).__name__}"
    )
    with session:
        for ctx in _contexts(session.get_adapter(url)):
            assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname, (
                "the adapter for dh-1024 does not verify the server (verify_mode or "
                "check_hostname was switched off): weak DH is the one thing you agreed to "
                "accept; an impostor is not"
            )
        ok, said = _outcome(lambda: session.get(url, verify=str(lab.ca_bundle), timeout=5))
        assert ok, f"{url} still fails: {said}"
        ok, said = _outcome(lambda: session.get(lab.url("valid"), verify=str(lab.ca_bundle), timeout=5))
        assert ok, f"another lab site, {lab.url('valid')}, fails through your session: {said}"
        # A twin of the dh-1024 server (same certificate, same 1024-bit group) on another
        # port: the same name, another URL. Only a mount on exactly `url` leaves it refused.
        from ..lab.build import server_context
        from ..servers import LoginServer

        twin = LoginServer(tls=server_context(lab.scenarios["dh-1024"], lab.files)).start()
        try:
            other = f"https://{lab.host('dh-1024')}:{twin.port}/"
            ok, said = _outcome(lambda: session.get(other, verify=str(lab.ca_bundle), timeout=5))
        finally:
            twin.stop()
        assert not ok and said.startswith("weak-dh"), (
            f"a server with the same weakness at another URL ({other}) answered {said}: your "
            "lowered security level covers more than the one URL, so any server there could "
            "now offer you 1024-bit DH. Mount the adapter on the full URL (scheme, host, port "
            "and '/'): 'https://' covers every host, and a prefix without the port also covers "
            "other ports (and 'https://bank.example' even 'https://bank.example.evil.example')"
        )
    session = answer(url, certifi.where())  # roots that do not include the lab's
    with session:
        ok, said = _outcome(lambda: session.get(url, verify=certifi.where(), timeout=5))
        assert not ok and said.startswith(("unknown-issuer", "untrusted-root")), (
            f"with cafile=certifi (which does not hold the lab's root) {url} gave {said}: "
            "your session does not verify the server with cafile. An escape hatch for weak "
            "DH is no reason to trust anybody: create the context with "
            "ssl.create_default_context(cafile=cafile)"
        )


# ------------------------------------------------------------------ strict_client


def _strict_twin(lab):
    """A second strict-no-aki server (same certificate) on another port, and its URL."""
    from ..lab.build import server_context
    from ..servers import LoginServer

    twin = LoginServer(tls=server_context(lab.scenarios["strict-no-aki"], lab.files)).start()
    return twin, f"https://{lab.host('strict-no-aki')}:{twin.port}/"


@exercise(
    "nb09",
    params=("cafile", "exempt"),
    hints=[
        "Two contexts from ssl.create_default_context(cafile=cafile): the strict one with "
        "ctx.verify_flags |= ssl.VERIFY_X509_STRICT (what Python 3.13+ does by default; on "
        "3.13 it is already set), and the downgrade with ctx.verify_flags &= "
        "~ssl.VERIFY_X509_STRICT.",
        "httpx.Client(verify=strict_ctx, mounts={exempt: httpx.HTTPTransport(verify=downgrade)}): "
        "the mount's key is the origin the downgrade is for, and nothing else.",
        "Use exempt exactly as given (scheme, host and port): 'https://' or 'all://' would "
        "downgrade every host, and a pattern without the port every port of that host.",
    ],
)
def strict_client(answer):
    import certifi
    import httpx

    from ..lab import get_lab

    lab = get_lab()
    exempt_url = lab.url("strict-no-aki")
    exempt = exempt_url.rstrip("/")
    client = answer(str(lab.ca_bundle), exempt)
    assert isinstance(client, httpx.Client), f"return an httpx.Client, not {type(client).__name__}"
    with client:
        ok, said = _outcome(lambda: client.get(exempt_url))
        assert ok, f"{exempt_url}, the exempted host, fails: {said}"
        ok, said = _outcome(lambda: client.get(lab.url("valid")))
        assert ok, f"a conforming site, {lab.url('valid')}, fails through your client: {said}"
        other = lab.url("strict-bc-noncritical")
        ok, said = _outcome(lambda: client.get(other))
        assert not ok and said.startswith("nonconforming"), (
            f"{other}, whose CA's basicConstraints is not critical, answered {said}: your client "
            "does not verify like Python 3.13 everywhere else. The downgrade must cover the "
            "exempted origin only; every other host keeps VERIFY_X509_STRICT (on Python 3.11 "
            "and 3.12, set it yourself)"
        )
        twin, twin_url = _strict_twin(lab)
        try:
            ok, said = _outcome(lambda: client.get(twin_url))
        finally:
            twin.stop()
        assert not ok and said.startswith("nonconforming"), (
            f"the same nonconforming certificate on another port ({twin_url}) answered {said}: "
            "your downgrade covers more than the exempted origin. Mount it on exempt exactly "
            "(scheme, host and port): a pattern without the port covers every port of the host"
        )
    client = answer(certifi.where(), exempt)  # roots that do not include the lab's
    with client:
        ok, said = _outcome(lambda: client.get(exempt_url))
        assert not ok and said.startswith(("unknown-issuer", "untrusted-root")), (
            f"with cafile=certifi (which does not hold the lab's root) {exempt_url} gave {said}: "
            "the downgraded transport does not verify with cafile. Clearing one strict rule "
            "is no reason to trust anybody: build both contexts with "
            "ssl.create_default_context(cafile=cafile)"
        )
