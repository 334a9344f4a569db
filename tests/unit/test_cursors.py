"""The list API's query: signed cursors bound to their client, refused with a 400 when
tampered with; lone surrogates; windows the database cannot be asked for."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.cursors import (
    MAX_CURSOR_CHARS,
    CursorCodec,
    InvalidCursorError,
    cursor_key,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.message import Client
from chalicelib.services.manage import MessageManager, parse_list_query
from tests.fakes.messages import FakeMessages

pytestmark = pytest.mark.unit

CODEC = CursorCodec(cursor_key("master"))
POSITION = (1764550000.25, "7a6b141d-8f6e-4b1e-9a55-0c9e1b1f3a10")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def refused(codec: CursorCodec, client_id: str, cursor: str) -> bool:
    with pytest.raises(InvalidCursorError) as caught:
        codec.decode(client_id, cursor)
    return caught.value.field == "cursor"


def test_a_cursor_reads_back_as_its_position_for_its_client() -> None:
    cursor = CODEC.encode("acme", POSITION)
    assert CODEC.decode("acme", cursor) == POSITION
    assert len(cursor) < MAX_CURSOR_CHARS


def test_another_clients_cursor_is_refused() -> None:
    assert refused(CODEC, "other", CODEC.encode("acme", POSITION))


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    foreign = CursorCodec(cursor_key("another master")).encode("acme", POSITION)
    assert refused(CODEC, "acme", foreign)


def test_a_payload_changed_under_its_mac_is_refused() -> None:
    _, _, mac = CODEC.encode("acme", POSITION).partition(".")
    forged = _b64(json.dumps({"t": 1.0, "m": POSITION[1]}).encode())
    assert refused(CODEC, "acme", f"{forged}.{mac}")


@pytest.mark.parametrize("t", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_unsigned_nan_or_infinite_positions_are_refused(t: str) -> None:
    payload = _b64(f'{{"t":{t},"m":"x"}}'.encode())
    assert refused(CODEC, "acme", payload)
    assert refused(CODEC, "acme", f"{payload}.AAAA")


def test_an_oversized_cursor_is_refused_before_any_work() -> None:
    assert refused(CODEC, "acme", "A" * 3000 + "." + "B" * 22)


@given(st.text(max_size=300))
def test_any_made_up_cursor_is_an_invalid_cursor_error(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        CODEC.decode("acme", cursor)


def test_the_list_query_reads_a_good_cursor_and_names_a_bad_one() -> None:
    query = parse_list_query("acme", {"cursor": CODEC.encode("acme", POSITION)}, CODEC)
    assert query.after == POSITION
    with pytest.raises(InvalidCursorError):
        parse_list_query("acme", {"cursor": "zzz"}, CODEC)


@pytest.mark.parametrize("params", [{"to": "+1\ud800"}, {"client_reference": "\udc00"},
                                    {"\ud800": "x"}])
def test_a_lone_surrogate_in_the_query_is_refused(params: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_list_query("acme", params, CODEC)
    assert "surrogate" in caught.value.message


@pytest.mark.parametrize("params", [{"until": "1960-01-01T00:00:00Z"},
                                    {"since": "1969-01-01T00:00:00Z",
                                     "until": "1969-06-01T00:00:00Z"}])
def test_a_window_before_1970_is_an_empty_page(params: dict[str, str]) -> None:
    manager = MessageManager(FakeMessages(), None, CODEC)  # type: ignore[arg-type]
    client = Client(client_id="acme", name="Acme")
    assert manager.list(client, manager.list_query(client, params)) == ([], None)
