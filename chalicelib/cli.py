"""The operator's command line, backed by the same services as the functions.

    python -m chalicelib.cli --help

It works against the local emulator (``AWS_ENDPOINT_URL`` set, as ``make``
does) and, with AWS credentials and ``STAGE``, against a deployed stage.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chalicelib.container import Container, with_stored
from chalicelib.domain.breaker import Breaker, BreakerConfig, in_window
from chalicelib.domain.callbacks import url_problem
from chalicelib.domain.errors import BackendUnavailableError, GatewayError, NotFoundError
from chalicelib.domain.inbound import phone_number_senders
from chalicelib.domain.message import rfc3339
from chalicelib.domain.pacing import pace_limit
from chalicelib.domain.routing import DEFAULT_ROUTE, Availability, Mode, Route, SenderType
from chalicelib.services.manage import new_api_key
from chalicelib.services.prices import PriceList, checked_country
from chalicelib.settings import (
    MESSAGE_TYPES,
    PROVIDER_NAMES,
    Settings,
    SettingsError,
    stage_environment,
)

Command = Callable[[Container, argparse.Namespace], int]
CENTS_PER_CREDIT = 100
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class CliError(Exception):
    """A refusal to show the operator, without a traceback."""


def _client_id(name: str, label: str = "NAME") -> str:
    if not CLIENT_ID.match(name):
        raise CliError(f"{label} must be 1-63 lower-case letters, digits, '-' or '_'")
    return name


def _secret(container: Container, client_id: str) -> str:
    if not container.settings.webhook_master_secret:
        return "none: WEBHOOK_MASTER_SECRET is not set (callbacks wait until it is)"
    return container.webhook_secrets.current(client_id).secret


def _settings_from(args: argparse.Namespace) -> dict[str, object]:
    if args.callback_url and url_problem(args.callback_url):
        raise CliError(f"--callback-url {url_problem(args.callback_url)}")
    if args.inbound_url and url_problem(args.inbound_url):
        raise CliError(f"--inbound-url {url_problem(args.inbound_url)}")
    if args.help_text is not None and not 0 < len(args.help_text) <= 1600:
        raise CliError("--help-text must be 1 to 1600 characters")
    for option, value, low in (("--rate-limit-rps", args.rate_limit_rps, 0.0),
                               ("--rate-limit-burst", args.rate_limit_burst, 0),
                               ("--max-parts", args.max_parts, 0)):
        if value is not None and not value > low:
            raise CliError(f"{option} must be greater than 0")
    if args.price_per_part_cents is not None and args.price_per_part_cents < 0:
        raise CliError("--price-per-part-cents must be 0 or more")
    test_mode = None if args.test_mode is None else args.test_mode == "on"
    guards = _guard_settings(args)
    chosen = {"message_type": args.message_type, "test_mode": test_mode,
              "rate_limit_rps": args.rate_limit_rps, "rate_limit_burst": args.rate_limit_burst,
              "price_per_part_cents": args.price_per_part_cents,
              "callback_url": args.callback_url, "max_parts": args.max_parts,
              "inbound_url": args.inbound_url, "help_text": args.help_text,
              "allowed_senders": set(args.sender_ids.split(",")) if args.sender_ids else None}
    return {**{k: v for k, v in chosen.items() if v is not None}, **guards}


CLEAR = "none"  # the value that removes a guard setting


def _count(option: str, value: str | None, low: int) -> int | None | str:
    """A whole number >= ``low``, CLEAR (returned as None: remove it), or not given ("")."""
    if value is None:
        return ""
    if value.lower() == CLEAR:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) < low:
        raise CliError(f"{option} must be a whole number of {low} or more, or '{CLEAR}'")
    return int(value)


def _guard_settings(args: argparse.Namespace) -> dict[str, object]:
    """The fraud and spend guards given (a None value removes that setting)."""
    out: dict[str, object] = {}
    if args.allowed_countries is not None:
        wanted = args.allowed_countries.strip()
        try:
            codes = set() if wanted.lower() == CLEAR else {
                checked_country(c) for c in wanted.split(",") if c.strip()}
        except GatewayError as exc:
            raise CliError(f"--allowed-countries: {exc.message}") from None
        if not codes and wanted.lower() != CLEAR:
            raise CliError(f"--allowed-countries: give ISO codes (US,GB) or '{CLEAR}'")
        out["allowed_countries"] = codes or None
    for name, option, low in (("daily_limit_cents", "--daily-limit-cents", 0),
                              ("velocity_limit", "--velocity-limit", 1)):
        value = _count(option, getattr(args, name), low)
        if value != "":
            out[name] = value
    if args.velocity_mode is not None:
        out["velocity_mode"] = args.velocity_mode
    return out


def client(container: Container, args: argparse.Namespace) -> int:
    """Create a client, or update the one of that name. An API key another client holds,
    or a phone-number sender ID another client owns, is refused (exit 2), and nothing is
    changed."""
    client_id = _client_id(args.name)
    with claimed_senders(container, client_id, _settings_from(args).get("allowed_senders")):
        return _create_or_update(container, args)


@contextmanager
def claimed_senders(container: Container, client_id: str, wanted: object) -> Iterator[None]:
    """Claim the phone numbers among the client's new sender IDs (``wanted``; None: they do
    not change) before anything else is written, so inbound messages to them are its;
    take the claims back if the change fails, and release those of numbers it no longer
    has once it succeeded."""
    if not isinstance(wanted, set | frozenset):
        yield
        return
    numbers, problems = phone_number_senders(wanted)
    if problems:
        raise CliError("SENDER_IDS: " + "; ".join(problems))
    try:
        before, _ = phone_number_senders(container.accounts.client(client_id).allowed_senders)
    except NotFoundError:
        before = frozenset()
    claims = container.sender_claims
    fresh = claims.claim(client_id, numbers)  # ConflictError naming the owner: exit 2
    try:
        yield
    except BaseException:
        claims.release(client_id, fresh)
        raise
    claims.release(client_id, before - numbers)


def _create_or_update(container: Container, args: argparse.Namespace) -> int:
    client_id, accounts = _client_id(args.name), container.accounts
    settings = _settings_from(args)
    key = container.api_keys.create(client_id, args.name, (args.credits or 0) * CENTS_PER_CREDIT,
                                    args.api_key)
    if key is not None:
        accounts.configure(client_id, **settings)
        print(f"created client {client_id}")
        print(f"api key:        {key}   (shown once: it is stored only as a hash)")
    else:
        if args.api_key:
            container.api_keys.assign(client_id, args.api_key)
        accounts.configure(client_id, **settings)
        print(f"updated client {client_id}" + (" (new API key set)" if args.api_key else ""))
        if args.credits:
            print("note: CREDITS only applies when creating; add credit with `make topup`")
    print(f"client id:      {client_id}")
    print(f"webhook secret: {_secret(container, client_id)}")
    return 0


def topup(container: Container, args: argparse.Namespace) -> int:
    """Add credits (of 100 cents) to a client, with a ledger entry."""
    if args.credits <= 0:
        raise CliError("CREDITS must be a positive whole number")
    client_id = _client_id(args.name)
    container.accounts.balance(client_id)  # 'no such client' before anything is written
    try:
        entry = container.ledger.top_up(client_id, args.credits * CENTS_PER_CREDIT, args.note,
                                        args.ref)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    balance = container.accounts.balance(client_id)
    print(f"topped up {client_id} by {args.credits * CENTS_PER_CREDIT} cents (entry {entry}); "
          f"available {balance.available} cents")
    return 0


def rotate_key(container: Container, args: argparse.Namespace) -> int:
    """Give a client a new API key; the old one stops working and is released."""
    client_id = _client_id(args.name)
    key = container.api_keys.rotate(client_id)
    print(f"new api key for {client_id}: {key}   (shown once)")
    print(f"the old key stops working at once here, and within AUTH_CACHE_TTL "
          f"({container.settings.auth_cache_ttl_s:.0f} s) on API instances that cached it")
    return 0


def admin_key(container: Container, args: argparse.Namespace) -> int:
    """Set the operator key (ADMIN_API_KEY; stored only as its SHA-256): the given one,
    else a new random one, shown once. The previous operator key stops working."""
    given = args.api_key or os.environ.get("ADMIN_API_KEY")
    key = given or new_api_key()
    container.api_keys.set_operator(key)
    print("operator key set" + ("" if given else f": {key}   (shown once)"))
    print(f"the previous one stops working within AUTH_CACHE_TTL "
          f"({container.settings.auth_cache_ttl_s:.0f} s) on API instances that cached it")
    return 0


def clients(container: Container, args: argparse.Namespace) -> int:
    """List the clients with their balances, in cents."""
    rows = sorted(container.accounts.scan_all(), key=lambda row: row[0].client_id)
    print(f"{'client':<20} {'name':<24} {'available':>10} {'held':>8} {'spent':>10} {'drift':>6}")
    for c, b in rows:
        print(f"{c.client_id:<20} {c.name[:24]:<24} {b.available:>10} {b.held:>8} "
              f"{b.spent:>10} {b.drift:>6}")
    return 0


def redrive(container: Container, args: argparse.Namespace) -> int:
    """Move dead letters back onto their work queues; non-zero if any could not be moved.

    On AWS with SQS's ``StartMessageMoveTask``; on the emulator (no move tasks) by
    receiving, re-sending and deleting only what SQS confirmed it took."""
    ok = True
    for queue, dlq in container.settings.names.queues().items():
        if args.queue and args.queue not in queue:
            continue
        target, source = container.queue(queue), container.queue(dlq)
        result = (target.move_from(source, wait_s=args.wait) if container.settings.deployed
                  else target.redrive_from(source))
        print(f"{dlq} -> {queue}: {result.moved} record(s) moved")
        for message_id, why in sorted(result.failed.items()):
            print(f"  FAILED {message_id}: {why} (left in {dlq})")
        if result.not_deleted:
            print(f"  {result.not_deleted} record(s) re-sent but not deleted from {dlq}: "
                  f"the next redrive sends them again")
        if result.running:
            print(f"  the move task {result.task} is still running ({result.pending} to go); "
                  f"`make status` shows the dead letters left")
        ok = ok and result.ok
    return 0 if ok else 1


def reconcile(container: Container, args: argparse.Namespace) -> int:
    """Audit every client's books and every message's hold; with --repair, fix the
    clients' counters where that is safe, each fix a ledger entry."""
    from chalicelib.services.reconcile import reconcile as audit

    report = audit(container.accounts, container.messages, container.books, args.repair,
                   costs=container.route_book.costs())
    for problem in report.problems:
        print(f"DISCREPANCY {problem}")
    for line in report.repaired:
        print(f"REPAIRED {line}")
    for client_id in report.busy:
        print(f"BUSY client {client_id}: its money moved during the audit; run again")
    for provider, margin in sorted(report.margins.items()):
        if margin.messages:
            print(f"provider {provider}: {margin.messages} delivered messages with a reported "
                  f"cost: charged {margin.charged_cents} cents, provider cost "
                  f"{margin.provider_usd} USD")
        if margin.estimated:
            print(f"provider {provider}: {margin.estimated} delivered messages without one, at "
                  f"the configured provider costs: charged {margin.estimated_charged_cents} "
                  f"cents, provider cost {margin.estimated_usd.normalize():f} USD")
    print(f"{report.clients} clients, {report.messages} messages: "
          + ("the books balance" if report.ok else f"{len(report.problems)} discrepancies")
          + (f", {len(report.repaired)} repaired" if report.repaired else ""))
    return 0 if report.outstanding == 0 else 1


def webhook_secret(container: Container, args: argparse.Namespace) -> int:
    """Print a client's current webhook secret (derived, never stored).

    The secret alone goes to stdout; what else the operator should know, to stderr.
    """
    secrets = container.webhook_secrets
    view = secrets.rotate(args.client) if args.rotate else secrets.current(args.client)
    print(view.secret)
    if view.previous_until is not None:
        print(f"the previous secret signs callbacks too until {rfc3339(view.previous_until)} "
              "(WEBHOOK_SECRET_GRACE)", file=sys.stderr)
    return 0


# -- routes and provider costs ------------------------------------------------------
def _criteria(r: Route) -> str:
    found = [f"{label}={value}" for label, value in (
        ("client", r.client_id), ("country", r.country), ("prefix", r.prefix),
        ("sender", r.sender_type.value if r.sender_type else None)) if value]
    return " ".join(found) or "every destination"


def _route_providers(r: Route) -> str:
    if r.mode is Mode.WEIGHTED:
        return ", ".join(f"{p}:{w}" for p, w in zip(r.providers, r.weights, strict=True))
    return ", ".join(r.providers)


def _cache_note(container: Container) -> str:
    return (f"warm functions see the change within ROUTES_CACHE_TTL "
            f"({container.settings.routes_cache_ttl_s:g} s)")


def route(container: Container, args: argparse.Namespace) -> int:
    """Create a route, or replace the one of that name (all its criteria)."""
    client_id = _client_id(args.client, "CLIENT") if args.client else None
    new = container.routes_admin.route_from(
        args.name, args.providers, mode=args.mode, country=args.country, prefix=args.prefix,
        client_id=client_id, sender_type=args.sender_type, weights=args.weights)
    if client_id is not None:
        try:
            container.accounts.balance(client_id)  # before anything is written
        except NotFoundError:
            raise CliError(f"no client {client_id!r}: CLIENT is a client's id, the NAME "
                           "given to `make client` (`make clients` lists them)") from None
    created = container.routes_admin.put_route(new)
    print(f"{'created' if created else 'replaced'} route {new.name}: {_criteria(new)} -> "
          f"{new.mode.value} {_route_providers(new)}")
    print(_cache_note(container))
    return 0


def _stage_settings(container: Container) -> tuple[Settings, str | None]:
    """The settings as the stage's functions see them (with its stored settings, on a
    deployed stage; an explicit variable still wins), and why not, if they could not be
    read."""
    s = container.settings
    if not s.settings_path:
        return s, None
    explicit = set(os.environ) | set(stage_environment(s.stage))
    try:
        return with_stored(s, explicit).settings, None
    except (BackendUnavailableError, SettingsError) as exc:
        return s, f"stored settings unreadable: {exc}"


def _stage_default(container: Container) -> tuple[tuple[str, ...], str]:
    """The default route's providers as the stage's functions see them, and where they
    come from."""
    s, problem = _stage_settings(container)
    note = f"; {problem}" if problem else ""
    setting = "PROVIDERS" if s.providers else "PROVIDER, as PROVIDERS is not set"
    return s.default_providers, f"stage {s.stage}'s {setting}{note}"


def routes(container: Container, args: argparse.Namespace) -> int:
    """List the routes as the router prefers them (most specific first), then the
    default route: the stage's PROVIDERS, else PROVIDER."""
    rows = [(r.name, _criteria(r), r.mode.value, _route_providers(r))
            for r in container.routes_admin.routes()]
    default, source = _stage_default(container)
    rows.append((DEFAULT_ROUTE, "what no route above matches", Mode.PRIORITY.value,
                 (", ".join(default) or "none: nothing is sent") + f"  ({source})"))
    header = ("route", "match", "mode", "providers")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
              + "  " + row[3])
    return 0


def route_delete(container: Container, args: argparse.Namespace) -> int:
    """Delete a route; its messages take the next route that matches (or the default)."""
    if args.name == DEFAULT_ROUTE:
        raise CliError(f"the {DEFAULT_ROUTE!r} route is the stage's PROVIDERS setting, not a "
                       "stored route: change PROVIDERS instead")
    if not container.routes_admin.delete_route(args.name):
        raise CliError(f"no route {args.name!r} (make routes lists them)")
    print(f"deleted route {args.name}; {_cache_note(container)}")
    return 0


def provider_cost(container: Container, args: argparse.Namespace) -> int:
    """Set what a provider charges per part in a country (for cheapest routes and the
    margin report)."""
    cost = container.routes_admin.cost_from(args.provider, args.country, args.micros)
    container.routes_admin.set_cost(cost)
    print(f"{cost.provider} costs {cost.micros} micro-dollars ({cost.usd} USD) per part in "
          f"{cost.country}; {_cache_note(container)}")
    return 0


def provider_costs(container: Container, args: argparse.Namespace) -> int:
    """List the provider costs, by provider and country."""
    costs = container.routes_admin.costs()
    if not costs:
        print("no provider costs (make provider-cost PROVIDER=twilio COUNTRY=US MICROS=7900)")
        return 0
    print(f"{'provider':<10} {'country':<7} {'micros':>10} {'USD per part':>14}")
    for c in costs:
        print(f"{c.provider:<10} {c.country:<7} {c.micros:>10} {c.usd:>14}")
    return 0


def _route_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("route", help="create a route, or replace the one of that name")
    p.add_argument("--name", required=True, help="the route's name, e.g. us")
    p.add_argument("--providers", required=True,
                   help="comma-separated providers in order, e.g. twilio,aws-sms")
    p.add_argument("--country", help="destination country (ISO 3166, e.g. US)")
    p.add_argument("--prefix", help="destination E.164 prefix, e.g. +1415 (longest wins)")
    p.add_argument("--client", help="only this client's messages: its id, which is the NAME "
                   "`make client` created it with")
    p.add_argument("--sender-type", help=f"only senders of this kind: "
                   f"{', '.join(t.value for t in SenderType)}")
    p.add_argument("--mode", help=f"{', '.join(m.value for m in Mode)} (default priority)")
    p.add_argument("--weights", help="with --mode weighted: one weight per provider, e.g. 70,30")
    p.set_defaults(run=route)
    sub.add_parser("routes", help="list the routes, then the default route").set_defaults(
        run=routes)
    p = sub.add_parser("route-delete", help="delete a route")
    p.add_argument("--name", required=True)
    p.set_defaults(run=route_delete)
    p = sub.add_parser("provider-cost", help="set a provider's cost per part in a country")
    p.add_argument("--provider", required=True)
    p.add_argument("--country", required=True, help="ISO 3166, e.g. US")
    p.add_argument("--micros", required=True, help="micro-dollars (USD) per part, e.g. 7900")
    p.set_defaults(run=provider_cost)
    sub.add_parser("provider-costs", help="list the provider costs").set_defaults(
        run=provider_costs)


def _cents(text: str) -> int | None:
    """``CENTS``: a whole number of cents, or ``none`` (remove the country's own price)."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise CliError(f"CENTS must be a whole number of cents (0 or more) or none, "
                       f"got {text!r}") from None


def _print_prices(prices: PriceList) -> None:
    fallback = ("its flat price" if prices.flat_price_cents is not None
                else "PRICE_PER_PART_CENTS (it has no flat price)")
    print(f"client {prices.client_id}: cents per part by destination country")
    for country, cents in sorted(prices.country_prices.items()):
        print(f"  {country}  {cents:>6}")
    if not prices.country_prices:
        print("  (no country prices)")
    flat = "none" if prices.flat_price_cents is None else str(prices.flat_price_cents)
    print(f"flat price:  {flat}")
    print(f"global price (PRICE_PER_PART_CENTS): {prices.global_price_cents}")
    print(f"other countries pay {prices.fallback_cents} cents per part: {fallback}")


def price(container: Container, args: argparse.Namespace) -> int:
    """Set (or with ``none`` remove) a client's price per part to one country."""
    client_id, cents = _client_id(args.client, "CLIENT"), _cents(args.cents)
    prices = container.prices.set(client_id, args.country, cents)
    country = checked_country(args.country)
    print(f"{client_id}: {country} " + (f"now {cents} cents per part" if cents is not None
                                        else "has no price of its own now"))
    _print_prices(prices)
    print(f"API instances that cached this client see the change within AUTH_CACHE_TTL "
          f"({container.settings.auth_cache_ttl_s:.0f} s)")
    return 0


def prices(container: Container, args: argparse.Namespace) -> int:
    """A client's prices per country, its flat price and the global fallback."""
    _print_prices(container.prices.list(_client_id(args.client, "CLIENT")))
    return 0


def _price_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("price", help="set a client's price per part to one destination country")
    p.add_argument("--client", required=True, help="client id, e.g. acme")
    p.add_argument("--country", required=True, help="ISO 3166 code, e.g. GB")
    p.add_argument("--cents", required=True,
                   help="cents per part (0 or more), or none to remove the country's price")
    p.set_defaults(run=price)
    p = sub.add_parser("prices", help="a client's prices per country and its fallbacks")
    p.add_argument("--client", required=True, help="client id, e.g. acme")
    p.set_defaults(run=prices)


# -- make providers (issue 17) ----------------------------------------------------

def providers(container: Container, args: argparse.Namespace) -> int:
    """Each provider: whether this stage can send through it, its place in the default
    route, its circuit breaker (shared by every worker) and its pace (PROVIDER_MPS)."""
    (s, problem), now = _stage_settings(container), time.time()
    if problem:
        print(f"({problem}; showing the environment's)")
    breakers = container.health.read(PROVIDER_NAMES)
    for name in PROVIDER_NAMES:
        print(name)
        for label, text in (("usable", _usable(s, name)), ("default route", _in_route(s, name)),
                            ("breaker", _breaker_state(breakers[name], now)),
                            ("window", _window(breakers[name], now, s.breaker)),
                            ("pace", _pace(container, s, name, now))):
            print(f"  {label + ':':<15}{text}")
    return 0


def _usable(s: Settings, name: str) -> str:
    problem = s.problem_of(name)
    return "yes" if problem is None else f"no: {problem}"


def _in_route(s: Settings, name: str) -> str:
    route = s.default_providers
    if name not in route:
        return "no"
    return f"yes, {route.index(name) + 1} of {len(route)} ({', '.join(route)})"


def _breaker_state(b: Breaker, now: float) -> str:
    times = f"opened {b.opened_count} time{'s' if b.opened_count != 1 else ''}"
    if b.opened_at is None:
        return f"closed ({times})"
    since = f"since {rfc3339(b.opened_at)}"
    if b.availability(now) is Availability.PROBE:
        return f"half-open {since}: the next send is a probe ({times})"
    wait = math.ceil((b.probe_at or now) - now)
    return f"open {since}, next probe in {wait} s ({times})"


def _window(b: Breaker, now: float, cfg: BreakerConfig) -> str:
    current = in_window(b, now, cfg)
    if current.ok + current.failed == 0:
        return f"no outcomes in the current window (BREAKER_WINDOW {cfg.window_s:g} s)"
    rate = current.success_rate() or 0.0
    return (f"{current.ok} ok, {current.failed} failed: {rate:.0%} success, since "
            f"{rfc3339(current.window_start)} (BREAKER_WINDOW {cfg.window_s:g} s)")


def _pace(container: Container, s: Settings, name: str, now: float) -> str:
    cap = s.provider_mps.get(name)
    if cap is None:
        return "no cap (PROVIDER_MPS does not name it)"
    lag = container.pacer.lag(name, pace_limit(cap), now)
    booked = f"booked {lag:.1f} s ahead" if lag > 0 else "idle"
    return f"{cap:g} parts/s (PROVIDER_MPS; sent at most {cap / 1.1:.3g}), {booked}"


def _client_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("client", help="create a client, or update the one of that name")
    p.add_argument("--name", required=True, help="the client's id and name, e.g. acme")
    p.add_argument("--credits", type=int, help="starting credits of 100 cents (on creation)")
    p.add_argument("--api-key", help="use this API key (default: a new random one); refused "
                   "if another client has it")
    p.add_argument("--rate-limit-rps", type=float, help="parts per second")
    p.add_argument("--rate-limit-burst", type=int, help="bucket size, in parts")
    p.add_argument("--price-per-part-cents", type=int)
    p.add_argument("--callback-url")
    p.add_argument("--max-parts", type=int)
    p.add_argument("--inbound-url", help="where its inbound messages are posted (signed "
                   "message.inbound events)")
    p.add_argument("--help-text", help="the reply to HELP and INFO (default: a standard one "
                   "naming the client)")
    p.add_argument("--allowed-countries", help="comma-separated ISO codes a send may go to "
                   f"(else 422 destination_not_allowed); '{CLEAR}': every country")
    p.add_argument("--daily-limit-cents", help="cents that may be held per UTC day (else 402 "
                   f"daily_limit_reached); '{CLEAR}': no cap")
    p.add_argument("--velocity-limit", help="messages per hour to one destination range "
                   f"(else 429 destination_velocity); '{CLEAR}': no guard")
    p.add_argument("--velocity-mode", choices=("block", "monitor"),
                   help="monitor: count and log only, refuse nothing")
    p.add_argument("--sender-ids", help="comma-separated sender IDs the client owns: it may "
                   "send only from these, and providers send from them (default: any sender, "
                   "sent from the provider's own number)")
    p.add_argument("--message-type", choices=MESSAGE_TYPES, type=str.upper,
                   help="how AWS End User Messaging classes its messages (default TRANSACTIONAL)")
    p.add_argument("--test-mode", choices=("on", "off"), type=str.lower,
                   help="on: providers check its messages and send none (nothing is charged)")
    p.set_defaults(run=client)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms-gateway-admin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _client_parser(sub)
    p = sub.add_parser("topup", help="add credits to a client (a ledger entry)")
    p.add_argument("--name", required=True)
    p.add_argument("--credits", type=int, required=True, help="credits of 100 cents")
    p.add_argument("--note")
    p.add_argument("--ref", help="the top-up's own reference: run again, it credits nothing more")
    p.set_defaults(run=topup)
    p = sub.add_parser("rotate-key", help="give a client a new API key")
    p.add_argument("--name", required=True)
    p.set_defaults(run=rotate_key)
    p = sub.add_parser("admin-key", help="set the operator key (ADMIN_API_KEY): the console's "
                       "operator view and /v1/admin")
    p.add_argument("--api-key", help="this key (default: ADMIN_API_KEY, else a new random one)")
    p.set_defaults(run=admin_key)
    sub.add_parser("clients", help="list clients and balances").set_defaults(run=clients)
    p = sub.add_parser("redrive", help="move dead letters back onto their work queues")
    p.add_argument("--queue", help="only queues whose name contains this (send, dlr, callbacks, inbound)")
    p.add_argument("--wait", type=float, default=300.0,
                   help="on AWS: seconds to wait for each move task to end (default 300)")
    p.set_defaults(run=redrive)
    rec = sub.add_parser("reconcile", help="check every client's books and message holds")
    rec.add_argument("--repair", action="store_true",
                     help="fix what is safe to fix; each fix is a ledger entry")
    rec.set_defaults(run=reconcile)
    p = sub.add_parser("webhook-secret", help="print a client's webhook secret")
    p.add_argument("--client", required=True, help="client id, e.g. demo")
    p.add_argument("--rotate", action="store_true",
                   help="switch to a new secret first; the old one also signs callbacks for "
                   "WEBHOOK_SECRET_GRACE (24 h)")
    p.set_defaults(run=webhook_secret)
    _route_parsers(sub)


    _price_parsers(sub)


    sub.add_parser("providers", help="each provider's state: usable, default route, circuit "
                   "breaker, success rate, pace").set_defaults(run=providers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.run
    stage = os.environ.get("STAGE", "local")
    env = {**stage_environment(stage), **os.environ}  # the shell wins over the config
    try:
        return command(Container(Settings.from_env(env)), args)
    except (CliError, GatewayError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
