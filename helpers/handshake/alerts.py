"""Alert and ChangeCipherSpec: the small records that are not handshake (introduced in notebook 06).

An **Alert** record is two bytes, a level and a description: it is how a TLS peer says
why it is hanging up (``fatal bad_certificate``, ``fatal protocol_version``) and how it
says goodbye politely (``close_notify``). Before the keys are set, alerts travel in
clear, which is why a failed handshake can be diagnosed from a capture; after that
they are encrypted like everything else.

A **ChangeCipherSpec** record is one byte, 1. In TLS 1.2 it means "from my next record
on, I encrypt". In TLS 1.3 it means nothing at all: it is sent only to look like a
TLS 1.2 session resumption to middleboxes (RFC 8446 appendix D.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from .display import _Display
from .reader import _as_bytes, _Reader
from .registry import ALERT_LEVELS, _name, alert_name

__all__ = [
    "ChangeCipherSpec",
    "Alert",
    "parse_change_cipher_spec",
    "parse_alert",
]


# RFC 5246 §7.1 (Change Cipher Spec Protocol):
#
#     struct {
#         enum { change_cipher_spec(1), (255) } type;
#     } ChangeCipherSpec;
#
# In TLS 1.3 it is a dummy record for middlebox compatibility (RFC 8446 §D.4).


@dataclass(frozen=True, repr=False)
class ChangeCipherSpec(_Display):
    """ "From my next record on, I encrypt" (TLS 1.2); a no-op in TLS 1.3."""

    value: int = 1

    def __repr__(self) -> str:
        return "ChangeCipherSpec()"

    def _rows(self) -> list[tuple[str, Any]]:
        return [("type", f"{self.value} (change_cipher_spec)")]


def parse_change_cipher_spec(
    payload: bytes | bytearray | memoryview, *, offset: int = 0
) -> ChangeCipherSpec:
    r = _Reader(_as_bytes(payload), offset)
    value = r.u8("the change_cipher_spec byte")
    if value != 1:
        raise ParseError(
            f"Expected the change_cipher_spec value 1 but found {value}", offset=offset
        )
    r.done("the ChangeCipherSpec")
    return ChangeCipherSpec(value)


# RFC 8446 §6 (Alert Protocol):
#
#     enum { warning(1), fatal(2), (255) } AlertLevel;
#
#     struct {
#         AlertLevel level;
#         AlertDescription description;
#     } Alert;


@dataclass(frozen=True, repr=False)
class Alert(_Display):
    """A two-byte alert: level and description (e.g. fatal bad_record_mac)."""

    level: int
    description: int

    @property
    def level_name(self) -> str:
        return _name(ALERT_LEVELS, self.level, 2)

    @property
    def description_name(self) -> str:
        return alert_name(self.description)

    def __repr__(self) -> str:
        return f"Alert({self.level_name}, {self.description_name})"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("level", f"{self.level} ({self.level_name})"),
            ("description", f"{self.description} ({self.description_name})"),
        ]


def parse_alert(payload: bytes | bytearray | memoryview, *, offset: int = 0) -> Alert:
    r = _Reader(_as_bytes(payload), offset)
    level = r.u8("the alert level")
    description = r.u8("the alert description")
    r.done("the Alert")
    return Alert(level, description)
