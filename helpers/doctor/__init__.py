"""A TLS doctor: what this machine's Python trusts, and why a tool fails (notebooks 00 and 09).

``python -m helpers.doctor [URL]`` in a terminal, or ``helpers.doctor.report()`` in a
notebook. It answers the questions a help desk asks first, each as a plain sentence with
its fix:

1. **Which TLS stack?** Python and *both* OpenSSLs: the one :mod:`ssl` is linked with
   (``ssl.OPENSSL_VERSION``) and the ``openssl`` command on ``PATH``, which can differ
   (a python.org, conda or uv Python brings its own library; the command is the
   system's), plus the one inside ``cryptography``'s wheel.
2. **Which trust store?** :func:`ssl.get_default_verify_paths` (OpenSSL's compiled-in
   file and directory, and the variables that override them) and how many CAs
   :func:`ssl.create_default_context` actually loaded (``cert_store_stats()``). A
   python.org Python on macOS ships *no* CA file: 0 CAs until you run its
   ``Install Certificates.command``. certifi's version and path (what ``requests`` and
   pip < 24.2 trust instead), and whether truststore (the OS store) is available.
3. **Which variables?** Every TLS-related environment variable that is set
   (:data:`VARIABLES`), and for each one that names a file or directory: does it exist,
   is it a PEM bundle with certificates in it, does it hold just one root (then the tool
   trusts *only* that root and every public site fails), a private key, an expired
   certificate; a proxy URL written ``https://``; ``SSLKEYLOGFILE`` (every session key
   written to a file: a warning, always). pip's config files get the same checks for
   ``cert``, and ``trusted-host`` (certificate checks off for that host) is a warning.
4. **With a URL**, what :func:`helpers.diagnose.check` says about the server, and what
   each installed client (:mod:`helpers.clients`) does with *your* variables. Offline
   by default: a URL that is not a lab host needs live mode (:mod:`helpers.live`).

The doctor only reads: it changes no variable and no file.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import platform
import re
import shutil
import ssl
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..clients import NO_PROXY_VARIABLES, PROXY_VARIABLES

if TYPE_CHECKING:
    from ..clients import Verdict
    from ..diagnose import Diagnosis
    from ..lab import Lab, RemoteLab

#: The TLS-related variables the doctor looks at, and who reads each one.
VARIABLES: dict[str, str] = {
    "SSL_CERT_FILE": "OpenSSL's default CA file: ssl, urllib, httpx, aiohttp, curl, uv, pip 24.2+ "
    "and truststore on Linux (measured: helpers.clients.which_tool_reads_what)",
    "SSL_CERT_DIR": "OpenSSL's default CA directory (hashed names, `openssl rehash`)",
    "REQUESTS_CA_BUNDLE": "requests (instead of certifi); pip too, unless given --proxy (pip 24.1+)",
    "CURL_CA_BUNDLE": "curl; requests too, when REQUESTS_CA_BUNDLE is not set",
    "PIP_CERT": "pip (the same as --cert)",
    "HTTPS_PROXY": "the proxy for https:// URLs (requests, urllib, httpx, curl, pip, uv)",
    "https_proxy": "the same, lower case (curl reads only this spelling for https)",
    "HTTP_PROXY": "the proxy for http:// URLs",
    "http_proxy": "the same, lower case",
    "ALL_PROXY": "the proxy for every scheme (requests, httpx, curl)",
    "all_proxy": "the same, lower case",
    "NO_PROXY": "hosts that go direct, never through the proxy",
    "no_proxy": "the same, lower case",
    "SSLKEYLOGFILE": "every TLS session key is written to this file (Python 3.8+, curl, browsers)",
    "PYTHONHTTPSVERIFY": "0 switches certificate checks off for urllib on some Red Hat builds (PEP 493)",
    "UV_NATIVE_TLS": "uv: the platform's trust store instead of its bundled webpki roots",
    "UV_SYSTEM_CERTS": "uv 0.13+: the new name of UV_NATIVE_TLS",
}

_FILE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")

#: Failure kinds that mean "this client does not trust the chain it was shown".
_TRUST_KINDS = frozenset({"untrusted-root", "unknown-issuer", "self-signed", "certificate-invalid"})

#: Finding levels, worst first.
PROBLEM, WARNING, INFO = "problem", "warning", "info"
_COLOURS = {PROBLEM: "#cf222e", WARNING: "#9a6700", INFO: "#1a7f37"}


@dataclass
class Finding:
    """One plain sentence about this machine, and what to do about it."""

    level: str  # PROBLEM, WARNING or INFO
    topic: str
    text: str
    fix: str = ""

    def __str__(self) -> str:
        mark = {PROBLEM: "✘", WARNING: "!", INFO: "✔"}[self.level]
        return f"{mark} [{self.topic}] {self.text}" + (f"\n    fix: {self.fix}" if self.fix else "")


@dataclass
class Report:
    """What :func:`report` found: ``facts`` (name, value), ``variables`` (name, shown
    value), ``findings``, and with a URL the ``diagnosis`` and one ``clients`` verdict per
    installed client. ``ok`` is False when any finding is a problem."""

    facts: list[tuple[str, str]]
    variables: list[tuple[str, str]]
    findings: list[Finding]
    url: str | None = None
    diagnosis: Diagnosis | None = None
    clients: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level == PROBLEM for f in self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == PROBLEM]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self.facts)
        lines = ["TLS doctor (helpers/doctor)", ""]
        lines += [f"  {k:<{width}}  {v}" for k, v in self.facts]
        lines += ["", "TLS variables set:" if self.variables else "TLS variables set: none"]
        lines += [f"  {k}={v}" for k, v in self.variables]
        lines += ["", "Findings:"] + [f"  {f}".replace("\n", "\n  ") for f in self.findings]
        if self.diagnosis is not None:
            lines += [
                "",
                f"The server ({self.url}):",
                "  " + str(self.diagnosis).replace("\n", "\n  "),
            ]
        if self.clients:
            lines += ["", "Each client, with your variables:"]
            lines += ["  " + str(v).replace("\n", "\n  ") for v in self.clients]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        facts = "".join(
            f"<tr><td>{e(k)}</td><td><code>{e(v)}</code></td></tr>" for k, v in self.facts
        )
        variables = (
            "".join(
                f"<tr><td><code>{e(k)}</code></td><td><code>{e(v)}</code></td></tr>"
                for k, v in self.variables
            )
            or "<tr><td colspan=2>none set</td></tr>"
        )
        findings = "".join(
            f"<li><b style='color:{_COLOURS[f.level]}'>{e(f.level)}</b> [{e(f.topic)}] {e(f.text)}"
            + (f"<br><i>fix:</i> {e(f.fix)}" if f.fix else "")
            + "</li>"
            for f in self.findings
        )
        parts = [
            "<div style='color:#1f2328;background:#ffffff;font-family:system-ui,sans-serif;font-size:13px'>",
            "<h4>TLS doctor <small>(helpers/doctor)</small></h4>",
            f"<table>{facts}</table><h5>TLS variables set</h5><table>{variables}</table>",
            f"<h5>Findings</h5><ul>{findings}</ul>",
        ]
        if self.diagnosis is not None:
            parts.append(f"<h5>The server</h5>{self.diagnosis._repr_html_()}")
        if self.clients:
            parts.append("<h5>Each client, with your variables</h5>")
            parts += [v._repr_html_() for v in self.clients]
        parts.append("</div>")
        return "".join(parts)


# --------------------------------------------------------------------------- facts


def _openssl_cli() -> str:
    """``openssl version`` of the command on PATH, or why there is none."""
    found = shutil.which("openssl")
    if found is None:
        return "no openssl command on PATH"
    try:
        done = subprocess.run([found, "version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{found} did not answer ({exc})"
    return done.stdout.strip() or done.stderr.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _shown(name: str, value: str) -> str:
    """A variable's value as it may be printed: never a proxy password."""
    from ..clients import shown

    return shown(name, value)


# --------------------------------------------------------------------------- checks


def _pem_blocks(data: bytes) -> list[str]:
    """The labels of the PEM blocks in ``data`` (``CERTIFICATE``, ``PRIVATE KEY``...)."""
    return [m.decode() for m in re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)]


def check_bundle(name: str, value: str) -> list[Finding]:
    """What is wrong with the CA bundle a variable names, in sentences (nothing: one INFO)."""
    from cryptography import x509

    path = Path(value).expanduser()
    if not value:
        return [Finding(WARNING, name, f"{name} is set but empty.", f"Unset it: `unset {name}`.")]
    if not path.exists():
        return [
            Finding(
                PROBLEM,
                name,
                f"{name} names {value}, which does not exist: tools that read it fail every "
                "HTTPS request (requests: 'Could not find a suitable TLS CA certificate bundle').",
                f"Point {name} at an existing PEM bundle, or unset it.",
            )
        ]
    if path.is_dir():
        return [
            Finding(
                PROBLEM if name != "REQUESTS_CA_BUNDLE" else WARNING,
                name,
                f"{name} names a directory, {value}; it should name a file"
                + (
                    " (requests accepts a hashed directory, most tools do not)."
                    if name == "REQUESTS_CA_BUNDLE"
                    else "."
                ),
                "Use SSL_CERT_DIR for a directory, or point this at a PEM bundle file.",
            )
        ]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [
            Finding(
                PROBLEM,
                name,
                f"{name} names {value}, which cannot be read ({exc.strerror}).",
                "Fix the file's permissions (a CA bundle is public: 0644).",
            )
        ]
    labels = _pem_blocks(data)
    certs: list[x509.Certificate] = []
    if "CERTIFICATE" in labels:
        try:
            with warnings.catch_warnings():  # old roots with odd serials: not this user's problem
                warnings.simplefilter("ignore")
                certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            return [
                Finding(
                    PROBLEM,
                    name,
                    f"{name} names {value}, a PEM file with a damaged certificate ({exc}).",
                    "Rebuild the bundle: copy each block from BEGIN to END CERTIFICATE.",
                )
            ]
    out: list[Finding] = []
    if any("PRIVATE KEY" in label for label in labels):
        out.append(
            Finding(
                WARNING,
                name,
                f"{value} holds a private key: a CA bundle holds certificates only, "
                "and keys must not sit in files every tool reads.",
                "Remove the key from the bundle and keep it readable by its owner only (0600).",
            )
        )
    if not certs:
        what = "is empty" if not data.strip() else "holds no PEM certificate"
        out.append(
            Finding(
                PROBLEM,
                name,
                f"{name} names {value}, which {what}: a tool that reads it trusts nothing and every "
                "HTTPS request fails.",
                f"Point {name} at a real bundle (certifi's, plus your company root), or unset it.",
            )
        )
        return out
    now = _dt.datetime.now(_dt.timezone.utc)  # noqa: UP017 - the package supports 3.10
    expired = [c for c in certs if c.not_valid_after_utc < now]
    if len(certs) == 1:
        out.append(
            Finding(
                WARNING,
                name,
                f"{name} names {value}, which holds a single certificate: the tools that read it "
                "trust only that one CA, so every public site fails while the company's works.",
                "Build a bundle: certifi's roots followed by your root "
                '(cat "$(python -m certifi)" corp-root.pem > bundle.pem), and point the variable at it.',
            )
        )
    if expired and len(expired) == len(certs):
        first = expired[0].subject.rfc4514_string()
        out.append(
            Finding(
                PROBLEM,
                name,
                f"Every certificate in {value} has expired (first: {first}): nothing it holds "
                "can anchor a chain today.",
                "Export the current root again (your company's, or certifi's bundle) and rebuild.",
            )
        )
    if not out:
        # A store keeps a few expired roots until the next update; OpenSSL skips them.
        old = f", {len(expired)} of them expired (harmless in a large store)" if expired else ""
        out.append(
            Finding(INFO, name, f"{name} names a PEM bundle with {len(certs)} certificates{old}.")
        )
    return out


def check_directory(name: str, value: str) -> list[Finding]:
    """``SSL_CERT_DIR``: directories (``:``-separated) with OpenSSL's hashed file names."""
    out: list[Finding] = []
    for part in filter(None, value.split(os.pathsep)):
        path = Path(part).expanduser()
        if not path.is_dir():
            out.append(
                Finding(
                    PROBLEM,
                    name,
                    f"{name} names {part}, which is not a directory.",
                    f"Point {name} at a directory of certificates, or unset it.",
                )
            )
            continue
        hashed = [p for p in path.iterdir() if re.fullmatch(r"[0-9a-f]{8}\.\d+", p.name)]
        if not hashed:
            out.append(
                Finding(
                    PROBLEM,
                    name,
                    f"{part} has no hashed names (like 5ad8a5d6.0): OpenSSL looks certificates up "
                    "there by subject hash only, so it finds none.",
                    f"Run `openssl rehash {part}` (or c_rehash).",
                )
            )
        else:
            out.append(Finding(INFO, name, f"{part} holds {len(hashed)} hashed certificate names."))
    return out or [
        Finding(WARNING, name, f"{name} is set but empty.", f"Unset it: `unset {name}`.")
    ]


def check_proxy(name: str, value: str, env: dict[str, str]) -> list[Finding]:
    out: list[Finding] = []
    if value.lower().startswith("https://"):
        out.append(
            Finding(
                PROBLEM,
                name,
                f"{name} starts with https://: the client will try TLS with the proxy itself, and a "
                "proxy that speaks plain HTTP on its port answers 'wrong version number'.",
                "Write it http://host:port (the tunnel to the site is still TLS end to end).",
            )
        )
    other = name.lower()
    if name.isupper() and other in env and env[other] != value:
        out.append(
            Finding(
                WARNING,
                name,
                f"{name} and {other} are both set, to different proxies: tools disagree on which "
                "spelling wins (curl reads only https_proxy; requests prefers lower case).",
                "Set both to the same URL, or unset one.",
            )
        )
    return out or [
        Finding(INFO, name, f"Requests to https:// sites go through {_shown(name, value)}.")
    ]


def _check_trust_store(facts: list[tuple[str, str]]) -> list[Finding]:
    paths = ssl.get_default_verify_paths()
    facts.append(
        ("default CA file", f"{paths.openssl_cafile} (${paths.openssl_cafile_env} overrides)")
    )
    facts.append(
        ("default CA directory", f"{paths.openssl_capath} (${paths.openssl_capath_env} overrides)")
    )
    facts.append(("in use", f"cafile={paths.cafile}, capath={paths.capath}"))
    stats = ssl.create_default_context().cert_store_stats()
    facts.append(("create_default_context()", f"{stats['x509_ca']} CA certificates loaded"))
    if stats["x509_ca"]:
        return [
            Finding(
                INFO,
                "trust store",
                f"Python's default context loaded {stats['x509_ca']} CA certificates.",
            )
        ]
    lazy = (
        paths.capath
        and Path(paths.capath).is_dir()
        and any(re.fullmatch(r"[0-9a-f]{8}\.\d+", p.name) for p in Path(paths.capath).iterdir())
    )
    if lazy:
        return [
            Finding(
                INFO,
                "trust store",
                f"Python's default context loaded no CA file, but {paths.capath} has hashed "
                "certificates, which OpenSSL reads when a handshake needs them (0 here is normal).",
            )
        ]
    if sys.platform == "darwin":
        fix = (
            f"Run '/Applications/Python {sys.version_info.major}.{sys.version_info.minor}/"
            "Install Certificates.command' (python.org installer), or use truststore."
        )
    elif sys.platform.startswith("linux"):
        fix = "Install the system CA store (Debian/Ubuntu: apt install ca-certificates), or set SSL_CERT_FILE to a bundle."
    else:
        fix = "Set SSL_CERT_FILE to a CA bundle (python -m certifi prints certifi's), or use truststore."
    return [
        Finding(
            PROBLEM,
            "trust store",
            "Python's default context has 0 CA certificates: urllib, httpx, aiohttp and ssl "
            "will fail every HTTPS request with 'unable to get local issuer certificate'.",
            fix,
        )
    ]


def _check_certifi(facts: list[tuple[str, str]]) -> list[Finding]:
    version = _version("certifi")
    if version is None:
        facts.append(("certifi", "not installed"))
        return [
            Finding(
                WARNING,
                "certifi",
                "certifi is not installed: requests cannot start without it.",
                "pip install certifi",
            )
        ]
    import certifi

    where = certifi.where()
    facts.append(("certifi", f"{version}, {where}"))
    if not Path(where).is_file():
        return [
            Finding(
                PROBLEM,
                "certifi",
                f"certifi's bundle {where} is missing.",
                "pip install --force-reinstall certifi",
            )
        ]
    return []


def _check_truststore(facts: list[tuple[str, str]]) -> list[Finding]:
    version = _version("truststore")
    injected = ssl.SSLContext.__module__.startswith("truststore")  # inject_into_ssl() was called
    facts.append(
        (
            "truststore",
            (f"{version}" + (", injected into ssl" if injected else ", available (not injected)"))
            if version
            else "not installed (pip install truststore: the OS store for Python)",
        )
    )
    return []


def _check_pip_config(env: dict[str, str], facts: list[tuple[str, str]]) -> list[Finding]:
    """pip's config files (``pip config list``): ``cert``, ``client-cert``, ``proxy`` and the
    dangerous ``trusted-host``, which switches certificate checks off for a host."""
    from importlib.util import find_spec

    if find_spec("pip") is None:
        return []
    child_env = {
        k: v for k, v in env.items() if k.startswith("PIP_") or k in ("HOME", "XDG_CONFIG_HOME")
    }
    child_env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    out: list[Finding] = []
    settings = []
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith(":env:") or "." not in key:
            continue  # variables are checked on their own
        option, value = key.split(".", 1)[1], value.strip().strip("'\"")
        if option in ("cert", "client-cert", "proxy", "trusted-host", "index-url"):
            settings.append(f"{key}={_shown('proxy' if option == 'proxy' else key, value)}")
        if option == "cert":
            out += [
                Finding(
                    f.level,
                    f"pip config {key}",
                    f.text.replace("PIP_CERT", key),
                    f.fix.replace("PIP_CERT", f"{key} (pip config set {key} ...)"),
                )
                for f in check_bundle("PIP_CERT", value)
                if f.level != INFO
            ]
        elif option == "trusted-host":
            out.append(
                Finding(
                    WARNING,
                    f"pip config {key}",
                    f"pip's config trusts {value} without checking its certificate "
                    "(trusted-host): anyone in between can serve you any package.",
                    "Remove trusted-host and give pip the CA instead (cert = bundle.pem).",
                )
            )
    facts.append(
        ("pip config", ", ".join(settings) if settings else "no TLS settings in pip's config files")
    )
    return out


def _variables(env: dict[str, str]) -> tuple[list[tuple[str, str]], list[Finding]]:
    shown: list[tuple[str, str]] = []
    findings: list[Finding] = []
    for name in VARIABLES:
        if name not in env:
            continue
        value = env[name]
        shown.append((name, _shown(name, value)))
        if name in _FILE_VARIABLES:
            findings += check_bundle(name, value)
        elif name == "SSL_CERT_DIR":
            findings += check_directory(name, value)
        elif name in PROXY_VARIABLES:
            findings += check_proxy(name, value, env)
        elif name == "SSLKEYLOGFILE":
            findings.append(
                Finding(
                    WARNING,
                    name,
                    f"SSLKEYLOGFILE is set: every program started from this shell that honours it "
                    f"(Python's ssl since 3.8, curl, Firefox, Chrome) writes the secrets of every TLS "
                    f"session to {value}; anyone who can read that file can decrypt captured traffic.",
                    "Unset it as soon as you are done debugging (`unset SSLKEYLOGFILE`), and delete the file.",
                )
            )
        elif name == "PYTHONHTTPSVERIFY" and value.strip() == "0":
            findings.append(
                Finding(
                    PROBLEM,
                    name,
                    "PYTHONHTTPSVERIFY=0 switches certificate verification off for urllib on builds that honour it (PEP 493).",
                    "Unset it and fix the trust store instead.",
                )
            )
        elif name in NO_PROXY_VARIABLES:
            findings.append(Finding(INFO, name, f"These hosts bypass the proxy: {value}."))
    if "REQUESTS_CA_BUNDLE" not in env and "CURL_CA_BUNDLE" in env:
        findings.append(
            Finding(
                INFO,
                "CURL_CA_BUNDLE",
                "requests reads CURL_CA_BUNDLE too when REQUESTS_CA_BUNDLE is not set: both tools trust it.",
            )
        )
    return shown, findings


# --------------------------------------------------------------------------- with a URL


def _is_local(url: str) -> bool:
    from .. import names
    from ..diagnose.target import _looks_like_scenario

    if _looks_like_scenario(url):
        return True
    host = urlsplit(url if "://" in url else "//" + url).hostname or ""
    if names.is_lab_name(host) or host == "localhost":
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client_env(env: dict[str, str], local: bool) -> dict[str, str]:
    """The user's TLS variables, as the clients will get them (a lab URL never goes to a
    proxy that is not on this machine: it could not reach the lab, and would learn the name)."""
    from ..clients import ENV_VARIABLES

    out = {k: v for k, v in env.items() if k in ENV_VARIABLES and k != "SSLKEYLOGFILE"}
    if local:
        for name in PROXY_VARIABLES:
            if name in out and not _is_local(out[name]):
                del out[name]
    return out


def _diagnose(
    url: str, env: dict[str, str], clients: list[str] | None, lab: Lab | RemoteLab | None
) -> tuple[Diagnosis, str, list[Verdict], list[Finding]]:
    from .. import clients as client_module
    from .. import diagnose, live

    local = _is_local(url)
    if not local:
        live.require()  # LiveModeOff: one sentence, what to set
    diagnosis = diagnose.check(url, lab=lab)
    target = diagnosis.target if "://" in diagnosis.target else url
    if "://" not in target:  # a scenario name: the lab's URL for it
        from ..lab import get_lab

        target = (lab or get_lab()).url(url)
    wanted = clients if clients is not None else client_module.installed()
    is_index = urlsplit(target).path.rstrip("/").endswith("simple")
    findings: list[Finding] = []
    verdicts: list[Verdict] = []
    client_env = _client_env(env, local)
    for name in wanted:
        if name in ("pip", "uv") and not is_index:
            continue
        if name == "uv" and local and not any(k in client_env for k in PROXY_VARIABLES):
            continue  # uv resolves names itself: a lab name would go to DNS
        verdicts.append(client_module.fetch(name, target, env=client_env))
    if not is_index and any(c in wanted for c in ("pip", "uv")):
        findings.append(
            Finding(
                INFO,
                "clients",
                "pip and uv were not tried: they fetch from a package index; give the doctor an "
                "index URL (ending in /simple/) to try them.",
            )
        )
    if diagnosis.ok:
        untrusting = [v.client for v in verdicts if not v.ok and v.kind in _TRUST_KINDS]
        stuck = [
            f"{v.client} ({v.kind})" for v in verdicts if not v.ok and v.kind not in _TRUST_KINDS
        ]
        if untrusting:
            findings.append(
                Finding(
                    PROBLEM,
                    "clients",
                    f"The server is fine (check() verified it), yet {', '.join(untrusting)} did not "
                    "trust it with your variables: they read another trust store than the one that works.",
                    "Give each failing tool the bundle its own way (see helpers.clients.OWN_OPTION and "
                    "notebook 09's table): verify=, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, PIP_CERT.",
                )
            )
        if stuck:
            proxied = any(k in client_env for k in PROXY_VARIABLES)
            findings.append(
                Finding(
                    PROBLEM,
                    "clients",
                    f"The server is fine (check() went direct), yet {', '.join(stuck)} failed "
                    + (
                        "on the way: through the proxy your variables name."
                        if proxied
                        else "on the way."
                    ),
                    "Check HTTPS_PROXY and NO_PROXY (a host that must go direct belongs in NO_PROXY)."
                    if proxied
                    else "Read each client's message below.",
                )
            )
    else:
        said = f"{diagnosis.headline}. {diagnosis.detail}".strip()
        findings.append(Finding(PROBLEM, "server", said, diagnosis.fix))
    if local and any(v.kind in ("unknown-issuer", "untrusted-root") for v in verdicts):
        findings.append(
            Finding(
                INFO,
                "lab",
                "Lab sites are signed by the lab's own CA and the clients got only your variables, "
                "so they trust it only where a variable names lab.ca_bundle.",
            )
        )
    return diagnosis, target, verdicts, findings


# --------------------------------------------------------------------------- the report


def report(
    url: str | None = None,
    *,
    env: dict[str, str] | None = None,
    clients: list[str] | None = None,
    lab: Lab | RemoteLab | None = None,
) -> Report:
    """Examine this machine's TLS setup; with ``url``, diagnose it through every client.

    ``env`` defaults to :data:`os.environ` (a copy is read, nothing is changed); pass a
    dict to ask "what if". ``url`` may be a lab URL or scenario name (offline), or any
    https:// URL with live mode on (:func:`helpers.live.enable`). ``clients`` limits the
    clients tried (default: every installed one, :func:`helpers.clients.installed`);
    ``lab`` is the lab whose CA :func:`helpers.diagnose.check` trusts for lab hosts
    (default: the one :func:`helpers.lab.get_lab` started).
    """
    from ..environment import cryptography_openssl

    env = dict(os.environ if env is None else env)
    facts: list[tuple[str, str]] = [
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("ssl is linked with", ssl.OPENSSL_VERSION),
        ("openssl command", _openssl_cli()),
    ]
    try:
        facts.append(("cryptography's OpenSSL", cryptography_openssl()))
    except Exception as exc:  # noqa: BLE001 - a broken cryptography is a fact too
        facts.append(("cryptography's OpenSSL", f"unavailable ({exc})"))
    findings: list[Finding] = []
    cli = facts[2][1]
    linked = ssl.OPENSSL_VERSION.split()[1] if len(ssl.OPENSSL_VERSION.split()) > 1 else ""
    if cli.startswith("OpenSSL") and linked and linked not in cli.split()[1:2]:
        findings.append(
            Finding(
                INFO,
                "OpenSSL",
                f"Python's ssl uses OpenSSL {linked} but the openssl command is {cli.split()[1]}: "
                "a command-line test can disagree with Python (different defaults and trust store).",
            )
        )
    findings += _check_trust_store(facts)
    findings += _check_certifi(facts)
    findings += _check_truststore(facts)
    findings += _check_pip_config(env, facts)
    shown, var_findings = _variables(env)
    findings += var_findings
    result = Report(facts, shown, findings, url=url)
    if url:
        result.diagnosis, result.url, result.clients, more = _diagnose(url, env, clients, lab)
        result.findings += more
    order = {PROBLEM: 0, WARNING: 1, INFO: 2}
    result.findings.sort(key=lambda f: order[f.level])
    return result


__all__ = [
    "Finding",
    "Report",
    "VARIABLES",
    "check_bundle",
    "check_directory",
    "check_proxy",
    "report",
]
