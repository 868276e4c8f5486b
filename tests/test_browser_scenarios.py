"""What a browser shows for each lab scenario is measured, not remembered.

Each scenario in ``helpers/lab/scenarios.py`` has a ``browser`` text. This test starts the
lab the way a learner does (``python -m helpers.lab --json``), trusts the lab root in a
fresh NSS database (``certutil``, as Chromium's "Manage certificates > Authorities > Import"
would), opens every scenario's URL in the system's headless Chromium and compares:

* a scenario whose page fails names the ``net::ERR_*`` code Chromium really reports
  (``NET::ERR_CERT_DATE_INVALID`` on the error page), and no other Chromium code; a
  scenario whose outcome is a race (``RACES``) is visited several times and names each
  code it can give;
* a scenario whose page loads says "the page loads" and names no error code;
* a Firefox code (nothing Firefox is measured here) is labelled "per Mozilla's
  documentation";
* Chromium's net-log confirms what the loading pages say about a root you add yourself:
  not a "known root", so Certificate Transparency is not required.

The lab's ``*.lab.localhost`` names need no resolver rule: Chromium answers every
``*.localhost`` name with loopback itself (RFC 6761 §6.3), so the URLs the lab prints work
as they are. The Chromium version and every measured outcome are printed in the report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.lab.scenarios import SCENARIOS

from . import chromium, reporting

ROOT = Path(__file__).resolve().parent.parent
#: Chromium's error names as its error pages print them (NET::ERR_CERT_... or ERR_SSL_...).
CHROMIUM_CODE = re.compile(r"(?<![A-Z_])ERR_[A-Z0-9_]+")
FIREFOX_CODE = re.compile(r"\b(?:SEC_ERROR|SSL_ERROR|MOZILLA_PKIX_ERROR)_[A-Z0-9_]+")
LOADS = "the page loads"

#: Scenarios whose outcome is a race, visited several times, with every code they can give.
#: client-cert-required: Chromium retries without a certificate; on loopback the server's
#: certificate_required alert and FIN (RFC 8446 §4.4.2.4) can arrive before Chromium has
#: handed the new connection to the request, which then finds the socket closed
#: (ERR_SOCKET_NOT_CONNECTED, 20-65% of visits in runs here) instead of reading the alert
#: (ERR_BAD_SSL_CLIENT_AUTH_CERT). Seen in its net-log: SSL_ALERT_RECEIVED before SOCKET_IN_USE.
RACES = {"client-cert-required": {"ERR_BAD_SSL_CLIENT_AUTH_CERT", "ERR_SOCKET_NOT_CONNECTED"}}
VISITS_PER_RACE = 8


@dataclass(frozen=True)
class Measured:
    summary: dict  # what python -m helpers.lab --json printed
    version: str  # Chromium's full version
    visits: dict[str, list[chromium.Visit]]  # by scenario name
    verifications: list[dict[str, object]]  # from Chromium's net-log


@pytest.fixture(scope="module")
def measured(tmp_path_factory, pytestconfig):
    """Start the lab, open every scenario in one Chromium, stop the lab."""
    missing = chromium.missing_tools()
    if missing:
        pytest.fail(
            "This test needs Chromium and certutil: apt-get install -y " + " ".join(missing)
        )
    work = tmp_path_factory.mktemp("browser-scenarios")
    log = open(work / "lab.log", "wb")  # noqa: SIM115 (closed below)
    lab = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,  # its own process group, stopped below
    )
    try:
        assert lab.stdout is not None
        first = lab.stdout.readline()
        if not first:
            lab.wait(timeout=10)
            log.flush()
            pytest.fail(
                "python -m helpers.lab --json printed nothing:\n" + (work / "lab.log").read_text()
            )
        summary = json.loads(first)
        home = chromium.trusting_home(work / "home", Path(summary["ca_bundle"]))
        urls = {
            (name, i): entry["url"]
            for name, entry in summary["scenarios"].items()
            for i in range(VISITS_PER_RACE if name in RACES else 1)
        }
        net_log = work / "net-log.json"  # Chromium writes it when it exits
        version, flat = chromium.visit_all(urls, home, (f"--log-net-log={net_log}",))
        visits: dict[str, list[chromium.Visit]] = {}
        for (name, _), visit in flat.items():
            visits.setdefault(name, []).append(visit)
        lines = [f"Chromium {version}, headless, lab root trusted in $HOME/.pki/nssdb:"]
        for name, seen in visits.items():
            counts = Counter(v.error or f"page loads (HTTP {v.status})" for v in seen)
            shown = ", ".join(k if n == 1 else f"{k} x{n}" for k, n in counts.items())
            lines.append(f"  {name:<22} {shown}")
        reporting.report(pytestconfig, lines)
        yield Measured(summary, version, visits, chromium.verifications(net_log))
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
        log.close()


@pytest.mark.browser
def test_every_scenario_is_served_and_visited(measured):
    assert set(measured.summary["scenarios"]) == set(SCENARIOS)
    assert set(measured.visits) == set(SCENARIOS)
    assert set(RACES) <= set(SCENARIOS)


@pytest.mark.browser
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_browser_text_names_what_chromium_shows(name, measured):
    version, visits = measured.version, measured.visits
    text = SCENARIOS[name].browser
    said = set(CHROMIUM_CODE.findall(text))
    errors = {v.error for v in visits[name]}
    where = f"{name}: Chromium {version} gets {sorted(map(str, errors))}; the text says {text!r}"
    if errors == {None}:
        for visit in visits[name]:  # the lab's own page, not an error page or someone else's
            assert visit.status == 200 and (visit.title or "").startswith(f"{name}:"), where
        assert LOADS in text.lower() and not said, where
    else:
        assert None not in errors, where  # loads on one visit, fails on another
        codes = {e.removeprefix("net::") for e in errors if e.startswith("net::ERR_")}
        assert len(codes) == len(errors), where
        # Every code Chromium gave is named; the text names no code it cannot give.
        assert codes <= said <= codes | RACES.get(name, set()), where
    # A version the text quotes ("Chromium 156 shows ...") was measured, not guessed ahead.
    for quoted in re.findall(r"Chrom(?:e|ium) (\d+)", text):
        assert int(quoted) <= int(version.split(".")[0]), where


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_firefox_codes_say_where_they_come_from(name):
    """No Firefox runs here: a Firefox code is quoted from Mozilla, and says so."""
    text = SCENARIOS[name].browser
    if FIREFOX_CODE.search(text):
        assert "per Mozilla's documentation" in text, f"{name}: {text!r}"


@pytest.mark.browser
def test_a_root_you_added_is_exempt_from_certificate_transparency(measured):
    """The pages that load say so: Chromium demands CT only for chains to its own roots.

    Its net-log records, for each verification, whether the root is a "known root" (in
    Chrome's root store) and whether CT was required. No lab certificate carries SCTs.
    """
    assert "Certificate Transparency" in SCENARIOS["valid"].browser
    verified = [v for v in measured.verifications if v["cert_status"] == 0]
    hosts = {v["host"] for v in verified}
    assert SCENARIOS["valid"].host in hosts, measured.verifications
    for v in verified:
        assert v["is_issued_by_known_root"] is False, v
        assert v["ct_requirement_status"] == "CT_NOT_REQUIRED", v
