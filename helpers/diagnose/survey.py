"""The exception atlas: every lab scenario through every client, :func:`atlas` (notebook 02).

:func:`atlas` runs :func:`~helpers.diagnose.check` against each scenario of the lab, once
per client (``ssl`` and ``requests``), in a small thread pool, and tabulates what each
raised: the outermost exception and the decisive one inside it, the verify code, the raw
message and the kind. Every row is compared with what the scenario predicts
(:class:`helpers.lab.Expect`), so the atlas doubles as a test of the lab, and the rows
where the two clients disagree show where their policies differ.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cards import Table
from .connect import check

if TYPE_CHECKING:
    from ..lab import Expect, Lab, Scenario


@dataclass(frozen=True)
class AtlasRow:
    """One lab scenario seen through one client."""

    scenario: str
    client: str
    ok: bool
    kind: str
    exception: str
    cause: str
    verify_code: int | None
    message: str
    expected: str
    matched: bool
    version: str | None = None


@dataclass
class Atlas:
    """Every lab scenario through every client: what was raised, and was it expected?"""

    rows: list[AtlasRow]
    elapsed: float
    strict: bool = False

    def __iter__(self) -> Iterator[AtlasRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def matched(self) -> bool:
        """True when every row matched its scenario's expectation."""
        return all(r.matched for r in self.rows)

    @property
    def mismatches(self) -> list[AtlasRow]:
        return [r for r in self.rows if not r.matched]

    def row(self, scenario: str, client: str) -> AtlasRow:
        for r in self.rows:
            if r.scenario == scenario and r.client == client:
                return r
        raise KeyError((scenario, client))

    def __str__(self) -> str:
        lines = [f"{'scenario':22} {'client':9} {'kind':20} {'code':>4}  exception"]
        for r in self.rows:
            code = "" if r.verify_code is None else str(r.verify_code)
            mark = "" if r.matched else "   <-- expected " + r.expected
            lines.append(
                f"{r.scenario:22} {r.client:9} {r.kind:20} {code:>4}  {r.cause or '-'}{mark}"
            )
        lines.append(f"{len(self.rows)} rows in {self.elapsed:.2f} s; all matched: {self.matched}")
        return "\n".join(lines)

    def table(self) -> Table:
        """The rows as a :class:`helpers.cards.Table`."""
        return _atlas_table(self)

    def _repr_html_(self) -> str:
        return _atlas_html(self)


def _expected(scenario: Scenario, client: str, strict: bool) -> Expect:
    """The verdict a scenario predicts for ``client`` ("ssl" or "requests").

    The lab records Python's default context as ``expect``, stricter settings as
    ``strict`` and clients that decide differently in ``tools`` (requests refuses the
    Common Name fallback that the ssl module still allows).
    """
    if client in scenario.tools:
        return scenario.tools[client]
    base = scenario.expect
    if strict and scenario.strict is not None:
        base = scenario.strict
    return base


def atlas(
    lab: Lab | None = None,
    *,
    clients: Sequence[str] = ("ssl", "requests"),
    strict: bool = False,
    timeout: float = 2.0,
    workers: int = 8,
) -> Atlas:
    """Run every lab scenario through each client and tabulate what they raised.

    Each row holds the exception class (outermost and the decisive one inside it), the
    verify code, the raw message and the kind, and whether the result matched the
    scenario's expectation (:class:`helpers.lab.Expect`). ``strict=True`` also loads the
    lab's CRL where a scenario asks for revocation checking (``check_flags``).
    The connections run in a small thread pool against the one running lab.
    """
    from ..lab import get_lab

    lab = lab or get_lab()
    started = time.monotonic()
    jobs = [(name, client) for name in lab.scenarios for client in clients]

    def run(job: tuple[str, str]) -> AtlasRow:
        name, client = job
        scenario = lab.scenarios[name]
        crl = None
        if strict and "VERIFY_CRL_CHECK_LEAF" in getattr(scenario, "check_flags", ()):
            crl = lab.crl
        d = check(
            lab.url(name),
            cafile=lab.ca_bundle,
            crl=crl,
            timeout=timeout,
            via=client,
            lab=lab,
            probe=False,
        )
        expect = _expected(scenario, client, strict)
        return AtlasRow(
            scenario=name,
            client=client,
            ok=d.ok,
            kind=d.kind,
            exception=d.exception or "",
            cause=d.cause or "",
            verify_code=d.verify_code,
            message=d.message,
            expected=expect.describe(),
            matched=bool(expect.matches(d.error)),
            version=d.version,
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(run, jobs))
    return Atlas(rows=rows, elapsed=time.monotonic() - started, strict=strict)


def _short_class(name: str) -> str:
    """``requests.exceptions.SSLError`` -> ``requests.SSLError``: short, still unambiguous."""
    if "." not in name:
        return name
    package, _, cls = name.rpartition(".")
    return f"{package.split('.')[0]}.{cls}"


def _compact(message: str, limit: int = 90) -> str:
    """The informative part of an OpenSSL message, for a table cell."""
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", message)
    text = text.replace("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _atlas_table(a: Atlas) -> Table:
    rows = []
    for r in a.rows:
        caught = _short_class(r.exception)
        if r.cause and r.cause != r.exception:
            caught += " <- " + _short_class(r.cause)
        message = _compact(r.message)
        rows.append(
            {
                "scenario": r.scenario,
                "client": r.client,
                "kind": r.kind,
                "exception": caught or "-",
                "verify_code": r.verify_code,
                "message": message,
                "expected": r.expected,
                "matched": r.matched,
            }
        )
    summary = f"Exception atlas: {len(a.rows)} connections in {a.elapsed:.2f} s; " + (
        "every one matched its expectation." if a.matched else f"{len(a.mismatches)} did not match."
    )
    return Table(rows, title=summary)


def _atlas_html(a: Atlas) -> str:
    return _atlas_table(a)._repr_html_()
