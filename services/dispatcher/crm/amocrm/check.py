"""`tcxhooks check` lines of an amoCRM adapter: none of them changes anything in amoCRM.

amo auth     ok    account tcxdemo (id 28805383) answers
amo users    ok    3 users; 101 → 501 Anna Petrova, 102 → 502 Boris Ivanov; default 501 Anna Petrova
amo notify   ok    call notifications accepted
"""

from __future__ import annotations

from ..errors import CrmError
from ..sink import CheckLine
from .client import AmoApi
from .requests import PAGE, AmoOptions, items

FIX_AUTH = (
    "check [crm] url (https://SUBDOMAIN.amocrm.ru or .kommo.com) and the token: a long-lived token "
    "([crm] token) or the OAuth integration's keys ([crm] client_id, client_secret, redirect_uri, auth_code)"
)
FIX_USERS = "[crm] user_map and default_user take amoCRM user ids (Settings → Users, or GET /api/v4/users)"


async def check_lines(name: str, amo: AmoApi, options: AmoOptions) -> list[CheckLine]:
    try:
        account = await amo.call_json("GET", "/api/v4/account", f"{name} check")
    except CrmError as error:
        return [CheckLine(f"{name} auth", False, str(error), FIX_AUTH)]
    lines = [
        CheckLine(
            f"{name} auth", True, f"account {account.get('subdomain', '?')} (id {account.get('id', '?')}) answers"
        )
    ]
    try:
        users = {
            int(u["id"]): str(u.get("name", ""))
            for u in items(await amo.call_json("GET", "/api/v4/users", f"{name} check", query={"limit": PAGE}), "users")
        }
    except CrmError as error:
        return [*lines, CheckLine(f"{name} users", False, str(error), FIX_USERS)]
    lines.append(_users_line(name, users, options))
    if options.notify:
        lines.append(await _notify_line(name, amo))
    return lines


def _users_line(name: str, users: dict[int, str], options: AmoOptions) -> CheckLine:
    wanted = dict(options.user_map)
    if options.default_user:
        wanted["default"] = options.default_user
    unknown = sorted(f"{ext} → {uid}" for ext, uid in wanted.items() if uid not in users)
    if unknown:
        return CheckLine(f"{name} users", False, f"not amoCRM users: {', '.join(unknown)}", FIX_USERS)
    shown = (
        ", ".join(f"{ext} → {uid} {users[uid]}" for ext, uid in wanted.items())
        or "no user_map (calls go to amoCRM's default responsible user)"
    )
    return CheckLine(f"{name} users", True, f"{len(users)} users; {shown}")


async def _notify_line(name: str, amo: AmoApi) -> CheckLine:
    """An empty notification list: amoCRM refuses it (or takes it, notifying nobody) where call
    notifications exist, and answers 404 where the account no longer takes them."""
    try:
        answer = await amo.request("POST", "/api/v2/events", f"{name} check", body={"add": []})
    except CrmError as error:
        return CheckLine(f"{name} notify", False, str(error), "see the dispatcher log")
    if answer.status == 404:
        return CheckLine(
            f"{name} notify",
            True,
            "this account no longer takes live call notifications (POST "
            "/api/v2/events answers 404): calls are still logged",
        )
    if answer.status in (200, 202, 204, 400):
        return CheckLine(f"{name} notify", True, "live call notifications accepted")
    return CheckLine(f"{name} notify", False, f"POST /api/v2/events: HTTP {answer.status}", "see the dispatcher log")
