"""A fake amoCRM / Kommo account: the REST API v4 methods tcxhooks' amoCRM adapter uses (calls,
Unsorted, tasks, notes, users, the v2 call notification), as amoCRM's documentation describes them."""

from __future__ import annotations

import argparse

from aiohttp import web

from .account import AmoAccount
from .server import FakeAmo

__all__ = ["AmoAccount", "FakeAmo", "add_arguments", "build", "demo_account"]

CALLER = "79161234567"  # the simulator's external caller
CALLEE = "79031112233"  # the number its outbound scenarios dial
DEMO_TOKEN = "fake-amo-long-lived-token"


def demo_account(fake: FakeAmo) -> FakeAmo:
    """Agents for extensions 101-103 and the simulator's two external numbers as contacts."""
    for user_id, name in ((501, "Anna Petrova"), (502, "Boris Ivanov"), (503, "Vera Smirnova")):
        fake.account.add_user(user_id, name)
    fake.account.add_contact("Ivan Sidorov", f"+{CALLER}", active_leads=1)
    fake.account.add_contact("Olga Kuznetsova", f"+{CALLEE}")
    return fake


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=DEMO_TOKEN, help=f"the long-lived token it accepts ({DEMO_TOKEN})")
    parser.add_argument("--client-id", default="tcxhooks-integration", help="the OAuth integration's id")
    parser.add_argument("--client-secret", default="fake-client-secret", help="its secret key")
    parser.add_argument("--auth-code", default="", help="an authorization code it accepts once")
    parser.add_argument("--limit", type=int, default=7, help="requests a second above which it answers 429 (7)")
    parser.add_argument("--access-ttl", type=float, default=86400.0, help="access token lifetime, seconds (86400)")
    parser.add_argument(
        "--no-call-events",
        action="store_true",
        help="answer 404 to call notifications (POST /api/v2/events), as newer accounts may",
    )


def build(args: argparse.Namespace, url: str) -> tuple[web.Application, list[str]]:
    token = args.token
    fake = demo_account(
        FakeAmo(
            token,
            client_id=args.client_id,
            client_secret=args.client_secret,
            auth_code=args.auth_code,
            access_ttl=args.access_ttl,
            limit=args.limit,
            drain=float(args.limit),
            accepts_call_events=not args.no_call_events,
        )
    )
    lines = [
        f"fake amoCRM account at {url}",
        f"  long-lived token: {token}",
        f"  OAuth:            client {fake.client_id}, secret {fake.client_secret}, code {args.auth_code or '(none)'}",
        "  users:            501 Anna Petrova, 502 Boris Ivanov, 503 Vera Smirnova",
        f"  contacts:         +{CALLER} (one active lead), +{CALLEE}",
        "  calls received:   GET /fake/calls; what it holds: GET /fake/state",
    ]
    return fake.app(), lines
