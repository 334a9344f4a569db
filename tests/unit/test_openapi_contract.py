"""The OpenAPI document carries exactly the code's limits and patterns."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import validation as v
from chalicelib.domain.callbacks import MAX_URL_CHARS
from chalicelib.domain.cursors import MAX_CURSOR_CHARS
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.status import Status
from chalicelib.http.errors import ERROR_TABLE, INTERNAL
from chalicelib.services import manage
from chalicelib.services.accept import MAX_IDEMPOTENCY_KEY
from tests.support.paths import ROOT

pytestmark = pytest.mark.unit
FEW = settings(max_examples=40, deadline=None)

DOC: dict[str, Any] = json.loads((ROOT / "chalicelib" / "openapi.json").read_text())
SEND = DOC["components"]["schemas"]["SendRequest"]
FIELDS = SEND["properties"]


def _parameter(method: str, name: str) -> dict[str, Any]:
    operation = DOC["paths"]["/v1/messages"][method]
    found: dict[str, Any] = next(p for p in operation["parameters"] if p["name"] == name)
    return found


def test_to_carries_the_validators_e164_pattern() -> None:
    assert FIELDS["to"]["pattern"] == v.e164_pattern() == v.E164.pattern


def test_every_opt_out_number_carries_the_validators_e164_pattern() -> None:
    [number] = DOC["paths"]["/v1/opt-outs/{number}"]["delete"]["parameters"]
    body = DOC["components"]["schemas"]["OptOutRequest"]["properties"]["number"]
    assert number["schema"]["pattern"] == body["pattern"] == v.e164_pattern()


def test_from_is_a_sender_id_a_number_or_a_short_code_as_the_validator_says() -> None:
    sender, number, short = FIELDS["from"]["anyOf"]
    assert (sender["pattern"], sender["maxLength"]) == (v.SENDER_ID_PATTERN,
                                                       v.MAX_SENDER_ID_CHARS)
    assert number["pattern"] == v.e164_pattern()
    assert short["pattern"] == v.SHORT_CODE_PATTERN


def test_text_reference_url_and_key_limits_are_the_codes() -> None:
    assert (FIELDS["text"]["minLength"], FIELDS["text"]["maxLength"]) == (1, v.MAX_TEXT_CHARS)
    assert FIELDS["client_reference"]["maxLength"] == v.MAX_REFERENCE_CHARS
    assert FIELDS["callback_url"]["maxLength"] == MAX_URL_CHARS
    assert FIELDS["callback_url"]["pattern"] == v.CALLBACK_URL_PATTERN
    key = _parameter("post", "Idempotency-Key")["schema"]
    assert (key["minLength"], key["maxLength"]) == (1, MAX_IDEMPOTENCY_KEY)


def test_the_body_admits_exactly_the_validators_fields() -> None:
    assert set(FIELDS) == v.FIELDS
    assert SEND["additionalProperties"] is False
    assert set(SEND["required"]) == {"to", "from", "text"}
    assert f"{v.MAX_SCHEDULE_AHEAD_S // 86400} days" in FIELDS["send_at"]["description"]


def test_list_filters_are_the_codes() -> None:
    limit = _parameter("get", "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1, manage.MAX_LIMIT, manage.DEFAULT_LIMIT)
    assert _parameter("get", "cursor")["schema"]["maxLength"] == MAX_CURSOR_CHARS
    assert DOC["components"]["schemas"]["Status"]["enum"] == [s.value for s in Status]
    documented = {p["name"] for p in DOC["paths"]["/v1/messages"]["get"]["parameters"]}
    assert documented == manage.LIST_PARAMS
    for name in ("since", "until"):
        assert _parameter("get", name)["schema"]["format"] == "date-time"


def test_country_codes_are_prefix_free_so_the_pattern_is_the_parser() -> None:
    codes = [str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    assert not [(a, b) for a in codes for b in codes if a != b and b.startswith(a)]


@FEW
@given(st.from_regex(v.e164_pattern(), fullmatch=True))
def test_every_number_of_the_documented_shape_is_accepted(number: str) -> None:
    assert v.validate_phone_number(number, strict=False)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\+[0-9]{1,17}", fullmatch=True))
def test_the_pattern_agrees_with_phonenumbers_country_codes(number: str) -> None:
    shape = re.fullmatch(r"\+[1-9][0-9]{6,14}", number) is not None
    known = False
    if shape:  # the validator before the pattern: phonenumbers parses the country code
        try:
            parsed = phonenumbers.parse(number, None)
            known = phonenumbers.region_code_for_country_code(parsed.country_code) != "ZZ"
        except phonenumbers.NumberParseException:
            known = False
    assert v.validate_phone_number(number, strict=False) == (shape and known)


@FEW
@given(st.from_regex(v.SENDER_ID_PATTERN, fullmatch=True).filter(
    lambda s: len(s) <= v.MAX_SENDER_ID_CHARS))
def test_every_documented_sender_id_is_accepted(sender: str) -> None:
    body = {"to": "+14155550123", "from": sender, "text": "hi"}
    assert v.parse_send_request(body, 10, strict_phone=False).sender == sender


def test_the_error_codes_are_the_error_tables() -> None:
    error = DOC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    assert set(error["code"]["enum"]) == {code for _, code in ERROR_TABLE.values()} | {INTERNAL[1]}


@FEW
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
       st.sampled_from(["T", "t"]), st.sampled_from(["", ".5", ".123456789"]),
       st.booleans())
def test_every_rfc3339_date_time_is_read(moment: datetime, offset_min: int, sep: str,
                                          fraction: str, zulu: bool) -> None:
    # What the document's `date-time` admits for since, until and send_at (the list's
    # made-up cursors keep schemathesis from checking GET /v1/messages' positive answers).
    sign, minutes = ("+" if offset_min >= 0 else "-"), abs(offset_min)
    zone = "Z" if zulu else f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    text = f"{moment.year:04d}" + moment.strftime(f"-%m-%d{sep}%H:%M:%S") + fraction + zone
    expected = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=0 if zulu
                                                                     else offset_min)))
    assert abs(v.parse_rfc3339(text, "since") - expected.timestamp()) < 1


@pytest.mark.parametrize("text", ["2026-12-01", "2026-12-01T09:30Z", "2026-12-01T09:30:00",
                                  "2026-12-01 09:30:00Z", "2026-13-01T09:30:00Z", "now",
                                  "2026-12-01T09:30:00+0100", "２026-12-01T09:30:00Z"])
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        v.parse_rfc3339(text, "until")
    assert caught.value.field == "until"


# -- prices (issue 17) --------------------------------------------------------------
def test_the_quote_body_and_answer_are_the_codes() -> None:
    from chalicelib.domain.pricing import COUNTRY_PATTERN
    from chalicelib.domain.segments import Encoding

    schemas = DOC["components"]["schemas"]
    quote = schemas["QuoteRequest"]
    assert set(quote["properties"]) == v.QUOTE_FIELDS
    assert quote["additionalProperties"] is False and set(quote["required"]) == {"to", "text"}
    for field in v.QUOTE_FIELDS:  # the same rules as a send's fields
        assert quote["properties"][field] == FIELDS[field]
    assert schemas["Quote"]["properties"]["encoding"]["enum"] == [e.value for e in Encoding]
    assert schemas["CountryPrices"]["propertyNames"]["pattern"] == COUNTRY_PATTERN
    assert "country_prices" in schemas["Me"]["required"]


def test_max_price_cents_is_a_whole_number_of_cents() -> None:
    assert FIELDS["max_price_cents"]["type"] == ["integer", "null"]
    assert FIELDS["max_price_cents"]["minimum"] == 0
    assert "max_price_exceeded" in DOC["paths"]["/v1/messages"]["post"]["responses"]["422"][
        "description"]
