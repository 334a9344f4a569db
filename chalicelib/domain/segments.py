"""SMS segmentation: GSM 03.38 7-bit or UCS-2, split into concatenated parts.

GSM: 160 septets in a single part, 153 per part when concatenated; an
extension-table character takes two septets (escape + code) and a part never
ends between the two. UCS-2: 70 UTF-16 code units single, 67 concatenated;
a part never splits a surrogate pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    GSM7 = "GSM7"
    UCS2 = "UCS2"


@dataclass(frozen=True)
class SegmentPlan:
    """How a text travels: its encoding and the parts it is cut into."""

    encoding: Encoding
    parts: tuple[str, ...]
    units: int  # septets (GSM7) or UTF-16 code units (UCS2)

    @property
    def count(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM default or extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def _gsm_weight(ch: str) -> int:
    return 2 if ch in GSM_EXTENSION else 1


def _ucs2_weight(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def plan_segments(text: str) -> SegmentPlan:
    """Choose the encoding of ``text`` and cut it into the fewest parts."""
    if is_gsm7(text):
        encoding, weight, single, multi = Encoding.GSM7, _gsm_weight, GSM_SINGLE, GSM_MULTI
    else:
        encoding, weight, single, multi = Encoding.UCS2, _ucs2_weight, UCS2_SINGLE, UCS2_MULTI
    total = sum(weight(ch) for ch in text)
    if total <= single:
        return SegmentPlan(encoding, (text,), total)
    return SegmentPlan(encoding, _split(text, weight, multi), total)


def _split(text: str, weight: Callable[[str], int], limit: int) -> tuple[str, ...]:
    # Greedy filling is optimal here: parts are contiguous and every character
    # weighs 1 or 2, so taking as much as fits never increases the count.
    parts: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(text):
        w = weight(ch)
        if used + w > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += w
    parts.append(text[start:])
    return tuple(parts)

