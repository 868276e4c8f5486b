"""How a scan and a grade show in a notebook: the HTML reports (introduced in notebook 08).

A :class:`~helpers.probe.Scan` displays as a report of what each handshake showed: one
row per version (accepted, or the refusal reason), one row per accepted suite (with its
key exchange, forward secrecy, cipher and mode), the key exchanges read from the wire,
then the certificate, the trust verdict and HSTS. Rows that would cost points are
highlighted.

A :class:`~helpers.probe.Grade` displays as a badge with the final letter, one bar per
category (score × weight, and how the score was computed), the chain of steps from the
total to the final letter, and, folded away, every rule of
:data:`~helpers.probe.RULES` with the evidence of those that fired. Nothing here
computes a grade: it only draws what ``grading`` decided.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .attempts import _PRETTY, VERSIONS
from .rules import RULES
from .scores import WEIGHTS

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .grading import Grade
    from .result import Scan
    from .rules import Rule

_FG, _MUTED, _BG, _BORDER, _TRACK = "#1f2328", "#57606a", "#f6f8fa", "#d0d7de", "#e3e6ea"
_LETTER_COLOURS = {
    "A+": "#1a7f37",
    "A": "#1a7f37",
    "B": "#9a6700",
    "C": "#bc4c00",
    "D": "#cf222e",
    "E": "#cf222e",
    "F": "#a40e26",
    "T": "#6e40c9",
    "M": "#6e40c9",
}
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;"


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], highlight: Iterable[bool] = ()
) -> str:
    cell = f"padding:2px 8px;border-bottom:1px solid {_BORDER};text-align:left;vertical-align:top;"
    head = "".join(f'<th style="{cell}background:{_TRACK};color:{_FG}">{h}</th>' for h in headers)
    marks = list(highlight)
    body = []
    for i, row in enumerate(rows):
        bg = "#fff1e5" if i < len(marks) and marks[i] else _BG
        body.append(
            "<tr>"
            + "".join(f'<td style="{cell}background:{bg};color:{_FG}">{v}</td>' for v in row)
            + "</tr>"
        )
    return (
        f'<table style="border-collapse:collapse;margin:4px 0;{_FONT}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _scan_html(s: Scan) -> str:
    e = html.escape
    yes, no = (
        f'<b style="color:{_LETTER_COLOURS["A"]}">yes</b>',
        f'<span style="color:{_MUTED}">no</span>',
    )
    version_rows = []
    for v in VERSIONS:
        accepted = s.versions.get(v)
        detail = ""
        if not accepted:
            detail = e(s.version_errors.get(v, ""))
        elif v == "TLSv1.3":
            detail = f"negotiated {e(s.tls13_suite or '?')}"
        version_rows.append([_PRETTY[v], yes if accepted else no, detail])
    parts = [
        f'<div style="{_FONT}color:{_FG};background:{_BG};border:1px solid {_BORDER};padding:8px 12px;margin:4px 0">',
        f'<div style="font-weight:600;font-size:14px">Scan of {e(s.target)}'
        f' <span style="font-weight:400;color:{_MUTED}">({s.handshakes} handshakes, {s.elapsed:.2f} s)</span></div>',
        _table(["version", "accepted", "detail"], version_rows),
    ]
    if s.suites_version:
        suite_rows = [
            [
                f"<code>{e(x.iana)}</code>",
                e(x.kex),
                yes if x.forward_secret else f'<b style="color:{_LETTER_COLOURS["C"]}">no</b>',
                e(x.cipher),
                str(x.bits),
                "AEAD" if x.aead else "CBC/stream",
            ]
            for x in s.suites
        ]
        parts.append(
            f"<div>Cipher suites accepted at {_PRETTY[s.suites_version]}: {len(s.suites)} of "
            f"{s.suites_tried} tried, one handshake each.</div>"
        )
        parts.append(
            _table(
                ["suite (RFC name)", "key exchange", "forward secrecy", "cipher", "bits", "mode"],
                suite_rows,
                [not x.forward_secret or not x.aead for x in s.suites],
            )
        )
    if s.key_exchanges:
        parts.append("<div>Key exchange, read from the handshake bytes:</div>")
        parts.append(
            _table(
                ["kind", "group", "size", "≈ RSA bits", "seen with"],
                [
                    [
                        e(k.kind),
                        e(k.group)
                        + (
                            f" <i>(post-quantum part: {e(k.post_quantum)})</i>"
                            if k.post_quantum
                            else ""
                        ),
                        f"{k.bits} bits",
                        str(k.rsa_bits),
                        f"{_PRETTY[k.version]}, {e(k.suite)}"
                        + ("" if k.source == "wire" else f" ({e(k.source)})"),
                    ]
                    for k in s.key_exchanges
                ],
                [k.rsa_bits < 2048 or not k.forward_secret for k in s.key_exchanges],
            )
        )
    facts = []
    if s.certificate is not None:
        c = s.certificate
        facts.append(
            f"certificate: <code>{e(c.subject)}</code>, {e(c.key_type)} {c.key_bits} bits, signed with {e(c.signature_hash)}"
        )
    if s.trust is not None:
        t = s.trust
        verdict = "trusted, name matches" if t.ok else f"{e(t.kind)}: {e(t.message)}"
        facts.append(f"trust check (verifying handshake): {verdict}")
    if s.hsts is not None:
        facts.append(
            f"HSTS: max-age {s.hsts.max_age} s ({s.hsts.days:.0f} days)"
            f"{', includeSubDomains' if s.hsts.include_subdomains else ''}"
            f"{', preload' if s.hsts.preload else ''}"
        )
    elif s.trust is not None and s.trust.ok:
        facts.append("HSTS: no Strict-Transport-Security header")
    facts += [e(n) for n in s.notes]
    parts.append("<br>".join(facts))
    parts.append("</div>")
    return "".join(parts)


def _bar(score: int, weight: float) -> str:
    return (
        f'<div style="display:inline-block;width:160px;height:10px;background:{_TRACK};'
        f'vertical-align:middle;border-radius:3px"><div style="width:{score}%;height:10px;'
        f'background:#0072B2;border-radius:3px"></div></div>'
        f" <b>{score}</b> × {weight:.1f}"
    )


def _grade_html(g: Grade) -> str:
    e = html.escape
    colour = _LETTER_COLOURS.get(g.letter, _FG)
    badge = (
        f'<div style="min-width:64px;height:64px;border-radius:8px;background:{colour};color:#ffffff;'
        f'font-size:34px;font-weight:700;display:flex;align-items:center;justify-content:center;padding:0 6px">{e(g.letter)}</div>'
    )
    rows = [
        ["protocol", _bar(g.protocol, WEIGHTS["protocol"]), e(g.explain["protocol"])],
        [
            "key exchange",
            _bar(g.key_exchange, WEIGHTS["key_exchange"]),
            e(g.explain["key_exchange"]),
        ],
        ["cipher strength", _bar(g.cipher, WEIGHTS["cipher"]), e(g.explain["cipher"])],
    ]
    if 0 in (g.protocol, g.key_exchange, g.cipher):
        formula = "a category scored 0, so the score is 0"
    else:
        formula = (
            f"{WEIGHTS['protocol']}×{g.protocol} + {WEIGHTS['key_exchange']}×{g.key_exchange}"
            f" + {WEIGHTS['cipher']}×{g.cipher} = {g.score:.1f}"
        )
    steps = [f"{formula} → {g.numeric_letter}"]
    for rule, _ in g.applied:
        steps.append(f"{rule.id} → {rule.cap}")
    steps.append(f"final <b>{e(g.letter)}</b>")
    if g.letter in ("T", "M"):
        steps.append(f"({e(g.capped_letter)} if the certificate problem were fixed)")
    fired = {r.id: ev for r, ev in g.applied}
    rule_rows = [
        [
            f"<code>{e(r.id)}</code>",
            f"<b>{e(r.cap)}</b>",
            e(r.when),
            f'<b style="color:{_LETTER_COLOURS["C"]}">{e(fired[r.id])}</b>'
            if r.id in fired
            else "—",
        ]
        for r in RULES
    ]
    return (
        f'<div style="{_FONT}color:{_FG};background:{_BG};border:1px solid {_BORDER};'
        f'border-left:5px solid {colour};padding:8px 12px;margin:4px 0">'
        f'<div style="display:flex;gap:12px;align-items:center">{badge}<div>'
        f'<div style="font-weight:600;font-size:14px">{e(g.target)}</div>'
        f"{_table(['category', 'score × weight', 'how'], rows)}"
        f'<div style="color:{_MUTED}">{" · ".join(steps)}</div></div></div>'
        f"<details><summary>every rule (fired rules show their evidence)</summary>"
        f"{_table(['rule', 'grade', 'when', 'evidence here'], rule_rows, [r.id in fired for r in RULES])}"
        f"</details></div>"
    )


def _rules_html(rules: Iterable[Rule]) -> str:
    """The rules table: three narrow columns, the why and the source folded per row."""
    e = html.escape
    rows = [
        [
            f"<code>{e(r.id)}</code>",
            f'<b style="color:{_LETTER_COLOURS.get(r.cap, _FG)}">{e(r.cap)}</b>',
            e(r.when) + f'<details><summary style="color:{_MUTED}">why</summary>{e(r.why)}'
            f'<br><span style="color:{_MUTED}">source: {e(r.source)}</span></details>',
        ]
        for r in rules
    ]
    return (
        f'<div style="{_FONT}color:{_FG}"><div style="font-weight:600">Grade rules '
        "(helpers.probe.RULES), checked top to bottom</div>"
        f"{_table(['rule', 'grade', 'when (open why: the attack, and the source)'], rows)}</div>"
    )
