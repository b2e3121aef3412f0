"""`tcxhooks check` for a Bitrix24 adapter: read-only probes, one verdict line each.

b24 auth     ok    application local.6650… installed on company.bitrix24.ru
b24 line     ok    2 lines: 74951234567 (Main line), 74957654321 (Sales)
b24 users    ok    4 extensions mapped: 101→11, 102→12, 103→13, 104→14; default_user 1
b24 click    FAIL  ONEXTERNALCALLSTART is not bound to https://hooks.example.com/crm/b24/event
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CrmError
from ..sink import CheckLine

if TYPE_CHECKING:
    from .adapter import Bitrix24Sink

_WEBHOOK_REFUSED = (
    "the portal refuses telephony methods to inbound webhooks (WRONG_AUTH_TYPE): create a local "
    "server-side application (Applications → Developer resources → Other → Local application, "
    '"Application uses API only") and set url, client_id, client_secret instead of webhook_url'
)


async def run_checks(sink: Bitrix24Sink) -> list[CheckLine]:
    name, settings = sink.name, sink.settings
    lines: list[CheckLine] = []
    try:
        lines.append(CheckLine(f"{name} auth", True, await sink._auth_probe()))
    except CrmError as exc:
        if exc.code == "WRONG_AUTH_TYPE":
            fix = _WEBHOOK_REFUSED
        elif exc.code == "NOT_INSTALLED":
            fix = (
                f"save the local application in the portal with the install path {sink.deps.public_url or '<public_url>'}"
                f"/crm/{name}/install (the dispatcher must be running and reachable)"
            )
        else:
            fix = "check url, client_id and client_secret (or webhook_url) of this [crm] section"
        return [CheckLine(f"{name} auth", False, str(exc), fix)]
    try:
        rows = await sink.api.method("telephony.externalLine.get")
        known = (
            {str(r.get("NUMBER")): str(r.get("NAME") or "") for r in rows if isinstance(r, dict)}
            if isinstance(rows, list)
            else {}
        )
        shown = ", ".join(f"{n} ({t})" for n, t in known.items()) or "none yet"
        if settings.line and settings.line not in known:
            lines.append(
                CheckLine(
                    f"{name} line",
                    False,
                    f"line {settings.line} is not among the app's lines: {shown}",
                    "set line = one of them, or leave it empty to use each call's DID",
                )
            )
        else:
            detail = f"{len(known)} lines: {shown}" + ("" if settings.line else "; each new DID is added as a line")
            lines.append(CheckLine(f"{name} line", True, detail))
    except CrmError as exc:
        if not settings.webhook_mode:
            lines.append(CheckLine(f"{name} line", False, str(exc)))
    try:
        sink.directory.stale()
        users = await sink.directory.users()
        mapped = ", ".join(f"{ext}→{uid}" for ext, uid in sorted(users.items()))
        default = f"default_user {settings.default_user}" if settings.default_user else "no default_user"
        if not users and not settings.default_user:
            lines.append(
                CheckLine(
                    f"{name} users",
                    False,
                    "no employee has an Internal phone and no default_user",
                    "fill in each agent's Internal phone (extension) in Bitrix24, or set user_map and default_user",
                )
            )
        else:
            lines.append(
                CheckLine(f"{name} users", True, f"{len(users)} extensions mapped: {mapped or '-'}; {default}")
            )
    except CrmError as exc:
        lines.append(CheckLine(f"{name} users", False, str(exc), "the application needs the `user` scope"))
    if settings.click_to_call:
        lines.append(await _click_check(sink))
    return lines


async def _click_check(sink: Bitrix24Sink) -> CheckLine:
    item = f"{sink.name} click"
    if not sink.handler_url:
        return CheckLine(
            item,
            False,
            "click_to_call needs the dispatcher's listener",
            "set [dispatcher] listen and public_url (an https URL the portal can reach)",
        )
    if sink.settings.webhook_mode:
        ok = bool(sink.settings.event_token)
        return CheckLine(
            item,
            ok,
            f"outgoing webhook for ONEXTERNALCALLSTART → {sink.handler_url}" if ok else "event_token is missing",
            ""
            if ok
            else "create an outgoing webhook for ONEXTERNALCALLSTART "
            f"pointing at {sink.handler_url} and set event_token to its token",
        )
    try:
        bound = await sink.api.method("event.get")
    except CrmError as exc:
        return CheckLine(item, False, str(exc))
    handlers = [h for h in bound if isinstance(h, dict)] if isinstance(bound, list) else []
    if any(
        str(h.get("event", "")).upper() == "ONEXTERNALCALLSTART" and h.get("handler") == sink.handler_url
        for h in handlers
    ):
        return CheckLine(
            item,
            True,
            f"ONEXTERNALCALLSTART → {sink.handler_url}; choose this app's line as the "
            "default number for outgoing calls in the telephony settings",
        )
    return CheckLine(
        item,
        False,
        f"ONEXTERNALCALLSTART is not bound to {sink.handler_url}",
        "start the dispatcher once the app is installed: it binds the handler itself",
    )
