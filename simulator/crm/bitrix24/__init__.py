"""A fake Bitrix24 portal with a local server-side application installed on it: the REST methods
tcxhooks' Bitrix24 adapter uses, as Bitrix24's documentation describes them (apidocs.bitrix24.com)."""

from __future__ import annotations

import argparse

from aiohttp import web

from .server import create_app
from .state import Portal

__all__ = ["Portal", "add_arguments", "build", "create_app"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=int,
        default=50,
        help="requests above which it answers QUERY_LIMIT_EXCEEDED (50; Enterprise 250)",
    )
    parser.add_argument(
        "--drain", type=float, default=2.0, help="requests per second the limit drains (2; Enterprise 5)"
    )
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="access token lifetime, seconds (3600)")
    parser.add_argument("--client-id", default=Portal.client_id, help="the local application's client id")
    parser.add_argument("--client-secret", default=Portal.client_secret, help="its client secret")
    parser.add_argument(
        "--allow-private-links",
        action="store_true",
        help="download RECORD_URL links to private addresses (a cloud portal refuses them)",
    )


def build(args: argparse.Namespace, url: str) -> tuple[web.Application, list[str]]:
    portal = Portal(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        public_links_only=not args.allow_private_links,
    )
    lines = [
        f"fake Bitrix24 portal at {url}",
        f"  portal url:       {url}",
        f"  oauth_url:        {url}/oauth/token/",
        f"  client id:        {portal.client_id}",
        f"  client secret:    {portal.client_secret}",
        f"  inbound webhook:  {url}/rest/{portal.webhook_user}/{portal.webhook_code}/",
        '  install the app:  POST /fake/install {"url": "<public_url>/crm/<name>/install"}',
        "  calls received:   GET /fake/calls",
    ]
    return create_app(portal, args.limit, args.drain), lines
