"""The operator's command line, backed by the same services as the functions.

    python -m chalicelib.cli --help

It works against the local emulator (``AWS_ENDPOINT_URL`` set, as ``make``
does) and, with AWS credentials and ``STAGE``, against a deployed stage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from chalicelib.container import Container
from chalicelib.settings import Settings, stage_environment

Command = Callable[[Container, argparse.Namespace], int]


def redrive(container: Container, args: argparse.Namespace) -> int:
    """Move dead letters back onto their work queues."""
    queues = container.settings.names.queues()
    for queue, dlq in queues.items():
        if args.queue and args.queue not in queue:
            continue
        moved = container.queues.redrive(dlq, queue)
        print(f"{dlq} -> {queue}: {moved} record(s) moved")
    return 0


def reconcile(container: Container, args: argparse.Namespace) -> int:
    """Audit every client's books and every message's hold."""
    from chalicelib.services.reconcile import reconcile as audit

    report = audit(container.accounts, container.messages)
    for problem in report.problems:
        print(f"DISCREPANCY {problem}")
    print(f"{report.clients} clients, {report.messages} messages: "
          + ("the books balance" if report.ok else f"{len(report.problems)} discrepancies"))
    return 0 if report.ok else 1


def webhook_secret(container: Container, args: argparse.Namespace) -> int:
    """Print a client's current webhook secret (derived, never stored)."""
    from chalicelib.domain.signing import derive_secret

    version = container.accounts.webhook_secret_version(args.client)
    print(derive_secret(container.settings.webhook_master_secret, args.client, version))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms-gateway-admin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("redrive", help="move dead letters back onto their work queues")
    p.add_argument("--queue", help="only queues whose name contains this (send, dlr)")
    p.set_defaults(run=redrive)
    p = sub.add_parser("reconcile", help="check every client's books and message holds")
    p.set_defaults(run=reconcile)
    p = sub.add_parser("webhook-secret", help="print a client's webhook secret")
    p.add_argument("--client", required=True, help="client id, e.g. demo")
    p.set_defaults(run=webhook_secret)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.run
    stage = os.environ.get("STAGE", "local")
    env = {**stage_environment(stage), **os.environ}  # the shell wins over the config
    return command(Container(Settings.from_env(env)), args)


if __name__ == "__main__":
    sys.exit(main())
