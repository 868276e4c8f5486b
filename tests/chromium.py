"""Drive the system's headless Chromium from tests, with a root CA trusted the way a user would.

On Linux, Chromium keeps the certificate authorities a *user* added in an NSS database,
``$HOME/.pki/nssdb``. Running Chromium with a fresh ``HOME`` whose database holds the lab
root (added with ``certutil`` from Debian's ``libnss3-tools``) is exactly what a learner
does through Settings > Privacy and security > Manage certificates > Authorities > Import,
minus the clicks. Nothing on the machine is touched: the database lives in a temporary
directory and Chromium gets its own ``--user-data-dir`` from Playwright.

Playwright drives the browser (``executable_path`` points at the Debian package; no
browser is ever downloaded). A failed navigation is reported with Chromium's own error
name, ``net::ERR_CERT_DATE_INVALID``: the code the error page shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

CHROMIUM = Path("/usr/bin/chromium")
K = TypeVar("K", bound=Hashable)
CERTUTIL = "certutil"

#: Quiet, offline, reproducible: no GPU, no QUIC, no background fetches (component
#: updates such as CRLSets, sync, first-run pages), so the only traffic is the page we open.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing_tools() -> list[str]:
    """What is not installed, as the Debian package to install (``[]`` when all is there)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append("chromium")
    if shutil.which(CERTUTIL) is None:
        missing.append("libnss3-tools")
    return missing


def trusting_home(home: Path, ca_pem: Path, nickname: str = "tls-course-lab-root") -> Path:
    """Make ``home/.pki/nssdb`` trust ``ca_pem`` for TLS servers; return ``home``.

    ``-t C,,`` is "trusted CA for TLS servers", nothing for e-mail or code signing.
    Only the root goes in: intermediates must come from the server (or the
    ``incomplete-chain`` scenario would pass).
    """
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    target = f"sql:{db}"
    subprocess.run([CERTUTIL, "-d", target, "-N", "--empty-password"], check=True)
    subprocess.run(
        [CERTUTIL, "-d", target, "-A", "-t", "C,,", "-n", nickname, "-i", str(ca_pem)],
        check=True,
    )
    return home


@dataclass(frozen=True)
class Visit:
    """What the browser got for one URL: an error code, or a page."""

    url: str
    error: str | None  # "net::ERR_CERT_DATE_INVALID", or None when the page loaded
    status: int | None = None
    title: str | None = None


async def _visit(context, url: str, timeout_ms: int) -> Visit:  # noqa: ANN001 (playwright type)
    from playwright.async_api import Error as PlaywrightError

    page = await context.new_page()
    failures: list[str] = []
    # The request's own failure text is the net::ERR_* name (Network.loadingFailed).
    page.on(
        "requestfailed",
        lambda request: failures.append(request.failure or "") if request.url == url else None,
    )
    try:
        try:
            response = await page.goto(url, timeout=timeout_ms)
        except PlaywrightError as exc:
            error = next((f for f in failures if f.startswith("net::")), None)
            if error is None:  # the message reads "Page.goto: net::ERR_... at URL"
                error = next((w for w in str(exc).split() if w.startswith("net::")), str(exc))
            return Visit(url, error)
        return Visit(url, None, response.status if response else None, await page.title())
    finally:
        await page.close()


async def _visit_all(
    urls: Mapping[K, str], home: Path, extra_flags: tuple[str, ...], timeout_ms: int
) -> tuple[str, dict[K, Visit]]:
    from playwright.async_api import async_playwright

    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=[*FLAGS, *extra_flags], env=env
        )
        try:
            context = await browser.new_context()
            names = list(urls)
            # One page per URL, all at once: Chromium holds some certificate errors for
            # up to a few seconds before showing its error page; in parallel that wait
            # is paid once.
            visits = await asyncio.gather(*(_visit(context, urls[n], timeout_ms) for n in names))
            return browser.version, dict(zip(names, visits, strict=True))
        finally:
            await browser.close()


def visit_all(
    urls: Mapping[K, str],
    home: Path,
    extra_flags: tuple[str, ...] = (),
    timeout_ms: int = 30_000,
) -> tuple[str, dict[K, Visit]]:
    """Open every URL in one headless Chromium whose user trust store is ``home``'s.

    Returns ``(browser version, {key: Visit})``; a URL may appear under several keys.
    """
    return asyncio.run(_visit_all(urls, home, extra_flags, timeout_ms))


def verifications(net_log: Path) -> list[dict[str, object]]:
    """Every certificate verification in a Chromium net-log (``--log-net-log=FILE``).

    One dict per verification: ``host``, ``cert_status`` (0 when the chain verified),
    ``is_issued_by_known_root`` (a root of Chrome's own store, not one the user added) and
    ``ct_requirement_status`` (whether Certificate Transparency was demanded).
    """
    log = json.loads(net_log.read_text())
    types = log["constants"]["logEventTypes"]
    phases = log["constants"]["logEventPhase"]
    job = types["CERT_VERIFIER_JOB"]
    begin, end = phases["PHASE_BEGIN"], phases["PHASE_END"]
    hosts: dict[int, str] = {}
    found = []
    for event in log["events"]:
        if event["type"] != job:
            continue
        params = event.get("params") or {}
        source = event["source"]["id"]
        if event["phase"] == begin:
            hosts[source] = params.get("host", "")
        elif event["phase"] == end:
            found.append(
                {
                    "host": hosts.get(source, ""),
                    "cert_status": params.get("cert_status"),
                    "is_issued_by_known_root": params.get("is_issued_by_known_root"),
                    "ct_requirement_status": params.get("ct_requirement_status"),
                }
            )
    return found
