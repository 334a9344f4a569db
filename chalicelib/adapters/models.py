"""PynamoDB models of the gateway's tables.

These classes name no real table: ``bind_tables`` makes subclasses bound to a
stage's tables, region and endpoint (the composition root calls it once per
container), so nothing is mutated globally and two containers can point at
two stacks.
``infra/template.py`` derives the tables' keys and indexes from these classes,
so the packaged template cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    Index,
    KeysOnlyProjection,
)
from pynamodb.models import Model

from chalicelib.domain.stats import COUNTERS, LATENCY_BINS
from chalicelib.domain.status import SweepLane
from chalicelib.resources import ResourceNames

SWEEP_SHARDS = 8  # per lane
# The sweep index's two lanes are shards 0-7 and 8-15 (see ``SweepLane``).
LANE_NUMBER = {SweepLane.QUEUED: 0, SweepLane.TIMED: 1}


class _Meta:
    region = "us-east-1"
    host: str | None = None
    connect_timeout_seconds = 2
    read_timeout_seconds = 5
    max_retry_attempts = 2
    billing_mode = "PAY_PER_REQUEST"


class ApiKeyIndex(GlobalSecondaryIndex["ClientModel"]):
    """Clients by the SHA-256 hash of their API key.

    Keys only: with all attributes projected, every balance update (two per
    message) would rewrite the index entry too.
    """

    class Meta:
        index_name = "api-key-index"
        projection = KeysOnlyProjection()

    api_key_hash = UnicodeAttribute(hash_key=True)


class ClientModel(Model):
    """A client: identity, balances, rate-limit state and overrides."""

    class Meta(_Meta):
        table_name = "clients"

    client_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    api_key_hash = UnicodeAttribute()
    available_cents = NumberAttribute(default=0)
    held_cents = NumberAttribute(default=0)
    spent_cents = NumberAttribute(default=0)
    initial_cents = NumberAttribute(default=0)
    topup_cents = NumberAttribute(default=0)
    tat = NumberAttribute(null=True)  # GCRA theoretical arrival time, epoch seconds
    rate_limit_rps = NumberAttribute(null=True)
    rate_limit_burst = NumberAttribute(null=True)
    price_per_part_cents = NumberAttribute(null=True)
    callback_url = UnicodeAttribute(null=True)
    callback_on_sent = BooleanAttribute(default=False)
    webhook_secret_version = NumberAttribute(default=1)
    webhook_secret_rotated_at = NumberAttribute(null=True)  # epoch s: the previous secret's grace
    allowed_senders = UnicodeSetAttribute(null=True)  # empty: any sender ID
    max_parts = NumberAttribute(null=True)
    message_type = UnicodeAttribute(null=True)  # TRANSACTIONAL | PROMOTIONAL
    test_mode = BooleanAttribute(null=True)
    # Cents per part by destination country (ISO code -> cents), as JSON; the flat
    # ``price_per_part_cents`` and then PRICE_PER_PART_CENTS cover the rest.
    country_prices = UnicodeAttribute(null=True)
    created_at = NumberAttribute(default=0)
    # Moves on with every money write: a repair applies only to the books it read.
    books_version = NumberAttribute(null=True)
    # Two-way and compliance.
    inbound_url = UnicodeAttribute(null=True)
    help_text = UnicodeAttribute(null=True)
    allowed_countries = UnicodeSetAttribute(null=True)  # ISO codes; empty: all
    daily_limit_cents = NumberAttribute(null=True)
    velocity_limit = NumberAttribute(null=True)  # messages per hour per destination range
    velocity_mode = UnicodeAttribute(null=True)  # block | monitor
    # The daily cap's counter: cents held on ``spend_day`` (UTC, 2026-12-02), moved in
    # the hold transaction.
    spend_day = UnicodeAttribute(null=True)
    spend_day_cents = NumberAttribute(null=True)

    api_key_index = ApiKeyIndex()


# Items of the clients table whose key starts with this are not clients: each
# claims one API key hash for its owner (``ApiKeyClaimModel``). No client id
# can take this shape (``#`` is not allowed in one).
API_KEY_CLAIM_PREFIX = "apikey#"
# The owner of the operator key's claim (``ADMIN_API_KEY``): no client id starts with "#".
OPERATOR = "#operator"


class ApiKeyClaimModel(Model):
    """One API key hash claimed by one client, in the clients table (not a table of its
    own: same key attribute, same IAM). Written with ``attribute_not_exists`` before a
    client's ``api_key_hash`` is set to that hash, deleted only after it moved on, so no
    two clients hold one key. It has no ``api_key_hash`` attribute, so the API-key index
    never lists it."""

    class Meta(_Meta):
        table_name = "clients"

    client_id = UnicodeAttribute(hash_key=True)  # API_KEY_CLAIM_PREFIX + the key's SHA-256
    owner = UnicodeAttribute()
    created_at = NumberAttribute(default=0)


# Items of the clients table whose key starts with this claim one sender ID (a phone
# number) for its owner: inbound messages to that number are the owner's.
SENDER_CLAIM_PREFIX = "sender#"


class SenderClaimModel(Model):
    """One phone-number sender ID owned by one client, in the clients table (as API key
    claims are): written with ``attribute_not_exists`` when ``make client SENDER_IDS=``
    gives the client the number, deleted when it is taken away."""

    class Meta(_Meta):
        table_name = "clients"

    client_id = UnicodeAttribute(hash_key=True)  # SENDER_CLAIM_PREFIX + the number
    owner = UnicodeAttribute()
    created_at = NumberAttribute(default=0)


@cache
def sender_claims(clients: type[ClientModel]) -> type[SenderClaimModel]:
    """The sender claim model on the same table, region and endpoint as ``clients``."""
    meta: Any = clients.Meta
    return _bound(SenderClaimModel, meta.table_name, meta.region, meta.host)


@cache
def api_key_claims(clients: type[ClientModel]) -> type[ApiKeyClaimModel]:
    """The claim model on the same table, region and endpoint as ``clients``."""
    meta: Any = clients.Meta
    return _bound(ApiKeyClaimModel, meta.table_name, meta.region, meta.host)


class SweepIndex(GlobalSecondaryIndex["MessageModel"]):
    """Unfinished messages by the time the sweeper should look at them.

    Sparse: ``sweep_at`` is removed when a message reaches a final status, so
    the index only ever holds work in progress. Sharded so the sweeper's
    queries spread over partitions, in two lanes (``SweepLane``: queued and
    timed) that the sweeper takes in turn, so neither waits behind the other.
    """

    class Meta:
        index_name = "sweep-index"
        projection = KeysOnlyProjection()

    sweep_shard = NumberAttribute(hash_key=True)
    sweep_at = NumberAttribute(range_key=True)


class ClientIndex(GlobalSecondaryIndex["MessageModel"]):
    """A client's messages by creation time (the list API), keys only.

    Keys only: its entries are written once, when the message is created, and
    never again (status changes do not touch it).
    """

    class Meta:
        index_name = "client-index"
        projection = KeysOnlyProjection()

    client_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class RecipientIndex(GlobalSecondaryIndex["MessageModel"]):
    """Messages by recipient, newest last: the conversation an inbound message answers
    (who last wrote to that person, from which number). Written once per message (its
    keys and projected attributes never change)."""

    class Meta:
        index_name = "recipient-index"
        projection = IncludeProjection(["client_id", "sender", "sender_owned"])

    to = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class MessageModel(Model):
    """One SMS and its hold: the record of truth for its status and money."""

    class Meta(_Meta):
        table_name = "messages"

    message_id = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute()
    to = UnicodeAttribute()
    sender = UnicodeAttribute()
    text = UnicodeAttribute()
    client_reference = UnicodeAttribute(null=True)
    encoding = UnicodeAttribute()
    parts = NumberAttribute()
    cost_cents = NumberAttribute()
    status = UnicodeAttribute()
    hold_state = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    error_code = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    provider = UnicodeAttribute(null=True)
    provider_message_id = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    callback_url = UnicodeAttribute(null=True)
    callback_on_sent = BooleanAttribute(null=True)
    callback_state = UnicodeAttribute(null=True)  # PENDING until the final event is queued
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    claimed_at = NumberAttribute(null=True)
    retry_at = NumberAttribute(null=True)
    sent_at = NumberAttribute(null=True)
    settled_at = NumberAttribute(null=True)
    sweep_shard = NumberAttribute(null=True)
    sweep_at = NumberAttribute(null=True)
    sweep_count = NumberAttribute(null=True)  # the sweeper's turns (not an index key)

    send_at = NumberAttribute(null=True)  # scheduled send, epoch seconds
    # How the client asked for it to go out (its settings when it was accepted).
    sender_owned = BooleanAttribute(null=True)
    message_type = UnicodeAttribute(null=True)
    test_mode = BooleanAttribute(null=True)
    # The status a claim took the message from: SENDING means a worker died mid-attempt.
    claimed_from = UnicodeAttribute(null=True)
    provider_cost = UnicodeAttribute(null=True)  # USD, as the provider's report gave it
    route = UnicodeAttribute(null=True)  # the route chosen when it was accepted
    country = UnicodeAttribute(null=True)  # the destination's ISO country code
    # The provider the last attempt failed at: the next one starts after it (failover).
    failed_provider = UnicodeAttribute(null=True)
    # Providers that refused it as theirs to refuse (destination not enabled...): skipped.
    refused_by = UnicodeSetAttribute(null=True)
    # Reports that settled nothing, "<epoch s> <provider status>" each (a string, so a
    # redelivered report is found with ``contains`` and not added twice); capped.
    events = ListAttribute(of=UnicodeAttribute, null=True)
    # Its status changes, ``StatusChange.key()`` each, appended by the write of each.
    history = ListAttribute(of=UnicodeAttribute, null=True)
    expires_at = NumberAttribute(null=True)  # its validity period's end (epoch s)
    kind = UnicodeAttribute(null=True)  # keyword_reply; absent: a client's message

    client_index = ClientIndex()
    sweep_index = SweepIndex()
    recipient_index = RecipientIndex()


class ProviderSendModel(Model):
    """The mock provider's own record of what it sent, one item per message."""

    class Meta(_Meta):
        table_name = "mock-provider-sends"

    message_id = UnicodeAttribute(hash_key=True)
    provider_message_id = UnicodeAttribute()
    attempt = NumberAttribute()
    sent_at = NumberAttribute()
    submissions = NumberAttribute(default=1)


class LedgerEntryModel(Model):
    """A credit movement that no message records: top-ups (and adjustments)."""

    class Meta(_Meta):
        table_name = "ledger"

    client_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)  # time-ordered
    kind = UnicodeAttribute()
    amount_cents = NumberAttribute()
    created_at = NumberAttribute()
    note = UnicodeAttribute(null=True)
    # An adjustment's counters before and after, as JSON (kind ADJUSTMENT).
    detail = UnicodeAttribute(null=True)


class RoutingModel(Model):
    """Routing state, one item per thing, grouped by ``kind`` so each kind is one Query:

    - ``route``: a route (``name``; criteria, ``providers``, ``mode``, ``weights``);
    - ``cost``: a provider's cost in one country (``name`` = ``<provider>#<country>``,
      ``micros`` per part);
    - ``breaker``: a provider's circuit breaker (``name`` = the provider);
    - ``pace``: a provider's GCRA bucket for ``PROVIDER_MPS`` (``tat``).
    """

    class Meta(_Meta):
        table_name = "routing"

    kind = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(range_key=True)
    # route
    providers = ListAttribute(of=UnicodeAttribute, null=True)
    mode = UnicodeAttribute(null=True)
    weights = ListAttribute(of=NumberAttribute, null=True)
    country = UnicodeAttribute(null=True)
    prefix = UnicodeAttribute(null=True)
    client_id = UnicodeAttribute(null=True)
    sender_type = UnicodeAttribute(null=True)
    # cost
    micros = NumberAttribute(null=True)
    # breaker
    window_start = NumberAttribute(null=True)
    ok = NumberAttribute(null=True)
    failed = NumberAttribute(null=True)
    opened_at = NumberAttribute(null=True)
    probe_at = NumberAttribute(null=True)
    opened_count = NumberAttribute(null=True)
    version = NumberAttribute(null=True)
    # pace
    tat = NumberAttribute(null=True)
    updated_at = NumberAttribute(null=True)
    # breaker and pace: a token of the last write, so a writer whose answer was lost
    # (and whose write botocore repeated into a failed condition) knows it landed
    writer = UnicodeAttribute(null=True)


class InboundClientIndex(GlobalSecondaryIndex["InboundModel"]):
    """A client's inbound messages by arrival (``GET /v1/inbound``). Sparse: an inbound
    message no client could be found for has no ``client_id``."""

    class Meta:
        index_name = "client-index"
        projection = AllProjection()

    client_id = UnicodeAttribute(hash_key=True)
    received_at = NumberAttribute(range_key=True)


class InboundModel(Model):
    """One inbound (mobile-originated) message, stored once per provider message."""

    class Meta(_Meta):
        table_name = "inbound"

    inbound_id = UnicodeAttribute(hash_key=True)  # uuid5 of (provider, provider id)
    provider = UnicodeAttribute()
    provider_message_id = UnicodeAttribute()
    client_id = UnicodeAttribute(null=True)
    from_number = UnicodeAttribute()
    to_number = UnicodeAttribute()
    text = UnicodeAttribute()
    received_at = NumberAttribute()
    keyword = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)  # the last outbound message it answers
    reply_id = UnicodeAttribute(null=True)  # the keyword's confirmation message
    done = BooleanAttribute(null=True)  # every effect applied

    client_index = InboundClientIndex()


class ContactModel(Model):
    """Per client: opt-out state per person (``optout#<number>``), the velocity guard's
    hourly counters (``velocity#<range>#<hour>``) and the delivery statistics per time
    bucket (``stats#<grain>#<start>``), the last two deleted by TTL."""

    class Meta(_Meta):
        table_name = "contacts"

    client_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    # optout
    opted_out = BooleanAttribute(null=True)
    changed_at = NumberAttribute(null=True)
    source = UnicodeAttribute(null=True)
    keyword = UnicodeAttribute(null=True)
    # velocity
    hits = NumberAttribute(null=True)  # messages counted (``count`` is Model's)
    expires_at = TTLAttribute(null=True)
    # delivery statistics (``stats#<grain>#<bucket start>``, domain.stats): one counter
    # per name of ``COUNTERS`` (``stat_<name>``) and one per latency bin (``lat_<i>``).
    for _name in COUNTERS:
        vars()[f"stat_{_name}"] = NumberAttribute(null=True, attr_name=_name)
    for _index in range(LATENCY_BINS):
        vars()[f"lat_{_index:02d}"] = NumberAttribute(null=True, attr_name=f"l{_index:02d}")
    del _name, _index


OPT_OUT_PREFIX, VELOCITY_PREFIX, STATS_PREFIX = "optout#", "velocity#", "stats#"


ALL_MODELS: tuple[type[Model], ...] = (
    ClientModel, MessageModel, ProviderSendModel, LedgerEntryModel, RoutingModel,
    InboundModel, ContactModel,
)


M = TypeVar("M", bound=Model)


def _bound(model: type[M], table: str, region: str, host: str | None) -> type[M]:
    """A subclass of ``model`` on ``table``, with indexes of its own."""
    base_meta: Any = model.Meta
    meta = type("Meta", (base_meta,), {"table_name": table, "region": region, "host": host})
    namespace: dict[str, Any] = {"Meta": meta, "__module__": model.__module__,
                                 "__qualname__": model.__qualname__}
    for name in dir(model):
        index = getattr(model, name, None)
        if isinstance(index, Index):
            namespace[name] = type(index)()  # an index instance belongs to one class
    return type(model.__name__, (model,), namespace)


@dataclass(frozen=True)
class Tables:
    """The model classes of one stage, bound to its tables."""

    clients: type[ClientModel]
    messages: type[MessageModel]
    provider_sends: type[ProviderSendModel]
    ledger: type[LedgerEntryModel]
    routing: type[RoutingModel]
    inbound: type[InboundModel]
    contacts: type[ContactModel]


@cache
def bind_tables(names: ResourceNames, region: str, endpoint_url: str | None) -> Tables:
    """Model classes on ``names``' tables at ``endpoint_url`` (None: AWS itself).

    Cached per process: containers for the same tables share the classes, and
    with them PynamoDB's connections (a botocore client each).
    """
    return Tables(
        clients=_bound(ClientModel, names.clients_table, region, endpoint_url),
        messages=_bound(MessageModel, names.messages_table, region, endpoint_url),
        provider_sends=_bound(ProviderSendModel, names.provider_sends_table, region, endpoint_url),
        ledger=_bound(LedgerEntryModel, names.ledger_table, region, endpoint_url),
        routing=_bound(RoutingModel, names.routing_table, region, endpoint_url),
        inbound=_bound(InboundModel, names.inbound_table, region, endpoint_url),
        contacts=_bound(ContactModel, names.contacts_table, region, endpoint_url),
    )
