"""Validation of POST /v1/messages bodies: fields, numbers, sender IDs, text, reference."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.segments import Encoding
from chalicelib.domain.validation import parse_send_request

pytestmark = pytest.mark.unit

GOOD = {"to": "+14155550123", "from": "Acme", "text": "Hello there", "client_reference": "r-1"}


def refused_field(body: object, max_parts: int = 10, strict_phone: bool = True) -> str | None:
    with pytest.raises(ValidationError) as caught:
        parse_send_request(body, max_parts, strict_phone)
    return caught.value.field


def with_(**changes: object) -> dict[str, object]:
    body: dict[str, object] = dict(GOOD)
    body.update(changes)
    return body


def without(field: str) -> dict[str, object]:
    return {k: v for k, v in GOOD.items() if k != field}


def test_good_body_is_parsed_with_its_segment_plan() -> None:
    request = parse_send_request(GOOD, max_parts=10, strict_phone=True)

    assert request.to == "+14155550123"
    assert request.sender == "Acme"
    assert request.text == "Hello there"
    assert request.client_reference == "r-1"
    assert request.plan.encoding is Encoding.GSM7
    assert request.plan.count == 1


def test_client_reference_is_optional() -> None:
    assert parse_send_request(without("client_reference"), 10, True).client_reference is None
    assert parse_send_request(with_(client_reference=None), 10, True).client_reference is None


@pytest.mark.parametrize("field", ["to", "from", "text"])
def test_missing_required_field_is_named(field: str) -> None:
    assert refused_field(without(field)) == field


@pytest.mark.parametrize("field", ["to", "from", "text"])
def test_null_required_field_is_named(field: str) -> None:
    assert refused_field(with_(**{field: None})) == field


@pytest.mark.parametrize("field", ["to", "from", "text"])
def test_empty_required_field_is_named(field: str) -> None:
    assert refused_field(with_(**{field: ""})) == field


@pytest.mark.parametrize("field", ["to", "from", "text", "client_reference"])
@pytest.mark.parametrize("value", [14155550123, ["x"], {"a": 1}, True])
def test_non_string_field_is_named(field: str, value: object) -> None:
    assert refused_field(with_(**{field: value})) == field


def test_unknown_field_is_refused_and_named() -> None:
    assert refused_field(with_(priority="high")) == "priority"


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(ValidationError):
        parse_send_request(body, 10, True)


def test_number_of_plausible_shape_is_accepted_only_when_not_strict() -> None:
    body = with_(to="+1234567890")

    assert parse_send_request(body, 10, strict_phone=False).to == "+1234567890"
    assert refused_field(body, strict_phone=True) == "to"


@pytest.mark.parametrize("strict", [True, False])
def test_real_number_is_accepted_strict_or_not(strict: bool) -> None:
    assert parse_send_request(GOOD, 10, strict).to == "+14155550123"


@pytest.mark.parametrize(
    "to",
    [
        "14155550123",  # no plus
        "+04155550123",  # country code cannot start with 0
        "+1 415 555 0123",  # spaces
        "+1415555012345678",  # longer than E.164's 15 digits
        "+12345",  # too short
        "+14155550123\n",  # trailing newline
        "+1٤155550123",  # Arabic-Indic digit
        "+999123456789",  # no such country calling code
    ],
)
@pytest.mark.parametrize("strict", [True, False])
def test_malformed_to_is_refused(to: str, strict: bool) -> None:
    assert refused_field(with_(to=to), strict_phone=strict) == "to"


@pytest.mark.parametrize(
    "sender",
    ["A", "Acme", "Acme Inc", "ACME2024", "ABCDEFGHIJK", "1a", "123", "12345678", "+14155550123"],
)
def test_valid_sender_is_accepted(sender: str) -> None:
    assert parse_send_request(with_(**{"from": sender}), 10, True).sender == sender


@pytest.mark.parametrize(
    "sender",
    [
        "ABCDEFGHIJKL",  # 12 characters
        "Acme-Inc",  # hyphen
        "Acmé",  # non-ASCII letter
        "12",  # short code too short
        "123456789",  # too long for a short code, and no letter
        "12345678901",  # 11 digits without a letter
        "Acme\n",  # trailing newline
        "١٢٣٤",  # Arabic-Indic digits are not a short code
        "+1234567890",  # strict: no such number
        "+",
    ],
)
def test_invalid_sender_is_refused(sender: str) -> None:
    assert refused_field(with_(**{"from": sender}), strict_phone=True) == "from"


def test_text_of_exactly_max_parts_is_accepted() -> None:
    request = parse_send_request(with_(text="a" * 153 * 3), max_parts=3, strict_phone=True)

    assert request.plan.count == 3


@pytest.mark.parametrize("text", ["a" * (153 * 3 + 1), "ж" * (67 * 3 + 1)])
def test_text_over_max_parts_is_refused(text: str) -> None:
    assert refused_field(with_(text=text), max_parts=3) == "text"


def test_text_over_1600_characters_is_refused_even_if_parts_allow() -> None:
    assert refused_field(with_(text="a" * 1601), max_parts=100) == "text"


@pytest.mark.parametrize("surrogate", ["\ud800", "\udfff", "ok \udc00 ok"])
def test_lone_surrogate_in_text_is_refused(surrogate: str) -> None:
    assert refused_field(with_(text=surrogate)) == "text"


def test_emoji_in_text_is_accepted_as_ucs2() -> None:
    request = parse_send_request(with_(text="hi 😀"), 10, True)

    assert request.plan.encoding is Encoding.UCS2
    assert request.plan.units == 5


def test_client_reference_of_128_characters_is_accepted_and_129_refused() -> None:
    assert parse_send_request(with_(client_reference="r" * 128), 10, True).client_reference
    assert refused_field(with_(client_reference="r" * 129)) == "client_reference"


@pytest.mark.parametrize("field", ["to", "from", "text", "client_reference", "callback_url",
                                   "send_at"])
def test_lone_surrogate_in_any_field_is_refused_naming_it(field: str) -> None:
    assert refused_field(with_(**{field: "ok \ud800"})) == field


def test_lone_surrogate_in_an_unknown_field_name_is_refused_with_a_printable_name() -> None:
    field = refused_field(with_(**{"x\udfff": "1"}))
    assert field == "x\\udfff"
    assert field.encode("utf-8")  # the answer can carry it


def test_a_surrogate_pair_is_an_ordinary_character() -> None:
    assert parse_send_request(with_(text="emoji \U0001F600"), 10, True).plan.count == 1
