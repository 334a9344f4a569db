"""Segmentation: GSM 03.38 septets or UCS-2 code units, cut into the fewest parts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.segments import Encoding, plan_segments

pytestmark = pytest.mark.unit

# Written out here rather than imported, so the tests check the module's tables.
EXTENSION = "\f^{}\\[~]|€"
GSM_SAMPLE = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà"
BMP_NON_GSM = "жЖ中`ą"
NON_BMP = "😀🎉𝄞👍"
EMOJI = "😀"


def septets(text: str) -> int:
    return sum(2 if ch in EXTENSION else 1 for ch in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def units(encoding: Encoding, text: str) -> int:
    return septets(text) if encoding is Encoding.GSM7 else utf16_units(text)


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm_part_count_follows_160_single_and_153_concatenated(length: int, parts: int) -> None:
    plan = plan_segments("a" * length)

    assert plan.encoding is Encoding.GSM7
    assert plan.count == parts
    assert plan.units == length


def test_eighty_euro_signs_fill_exactly_one_part_of_160_septets() -> None:
    plan = plan_segments("€" * 80)

    assert plan.encoding is Encoding.GSM7
    assert plan.count == 1
    assert plan.units == 160


def test_eighty_one_euro_signs_take_two_parts_and_never_split_an_escape_pair() -> None:
    plan = plan_segments("€" * 81)

    assert plan.count == 2
    assert plan.units == 162
    assert "".join(plan.parts) == "€" * 81
    assert all(septets(part) <= 153 for part in plan.parts)
    # 153 is odd: a part holding 76 euro signs (152 septets) plus half of the next is refused.
    assert [len(part) for part in plan.parts] == [76, 5]


def test_extension_character_at_the_153rd_septet_moves_whole_to_the_next_part() -> None:
    text = "a" * 152 + "[" + "b" * 10

    plan = plan_segments(text)

    assert plan.parts == ("a" * 152, "[" + "b" * 10)


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_part_count_follows_70_single_and_67_concatenated(length: int, parts: int) -> None:
    plan = plan_segments("ж" * length)

    assert plan.encoding is Encoding.UCS2
    assert plan.count == parts
    assert plan.units == length


def test_one_non_gsm_character_switches_the_whole_text_to_ucs2() -> None:
    plan = plan_segments("a" * 100 + "`")

    assert plan.encoding is Encoding.UCS2
    assert plan.count == 2


def test_emoji_counts_two_utf16_units() -> None:
    plan = plan_segments(EMOJI * 35)

    assert plan.encoding is Encoding.UCS2
    assert plan.units == 70
    assert plan.count == 1
    assert plan_segments(EMOJI * 36).count == 2


def test_emoji_at_a_part_boundary_is_never_split() -> None:
    text = "ж" * 66 + EMOJI + "ж" * 10

    plan = plan_segments(text)

    # 66 + 2 = 68 units would overflow 67: the whole pair starts the next part.
    assert plan.parts == ("ж" * 66, EMOJI + "ж" * 10)
    assert all(utf16_units(part) <= 67 for part in plan.parts)


def test_empty_text_is_one_empty_gsm_part() -> None:
    plan = plan_segments("")

    assert plan.encoding is Encoding.GSM7
    assert plan.parts == ("",)
    assert plan.units == 0


_gsm_only = st.text(alphabet=GSM_SAMPLE + EXTENSION, max_size=1000)
_mixed = st.text(alphabet=GSM_SAMPLE + EXTENSION + BMP_NON_GSM + NON_BMP, max_size=1000)
_mostly_gsm = st.builds(
    lambda body, odd: body + odd, _gsm_only, st.text(alphabet=BMP_NON_GSM + NON_BMP, max_size=3)
)
texts = st.one_of(_gsm_only, _mixed, _mostly_gsm)


@settings(max_examples=200, deadline=None, database=None)
@given(texts)
def test_plan_properties(text: str) -> None:
    plan = plan_segments(text)
    is_gsm = all(ch in GSM_SAMPLE or ch in EXTENSION for ch in text)
    single, multi = (160, 153) if is_gsm else (70, 67)
    limit = single if plan.count == 1 else multi

    assert plan.encoding is (Encoding.GSM7 if is_gsm else Encoding.UCS2)
    assert "".join(plan.parts) == text
    assert plan.units == units(plan.encoding, text)
    assert all(units(plan.encoding, part) <= limit for part in plan.parts)
    assert (plan.count == 1) == (plan.units <= single)
    if plan.count > 1:
        assert all(plan.parts)
    # Minimal: no part could have taken the next part's first character, so no
    # cut can move right and no split into fewer contiguous parts exists.
    for part, following in zip(plan.parts, plan.parts[1:], strict=False):
        assert units(plan.encoding, part + following[0]) > multi
