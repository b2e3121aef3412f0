"""The fake portal's `/fake/` API (not Bitrix24's): what it received, its state, and the portal's own
actions a test or the demo triggers (installing the app, an agent's click on a phone number).

    GET  /fake/calls                      every API call received, in order
    GET  /fake/state                      lines, registered and finished calls, activities, files, …
    POST /fake/install  {"url": …}        the app is installed: ONAPPINSTALL with fresh tokens to `url`
    POST /fake/click    {"user_id": 11, "phone": "+7916…"}   ONEXTERNALCALLSTART to the bound handlers
    POST /fake/expire                     every access token expires now
    POST /fake/limits   {"limit": 50, "drain": 2}
    POST /fake/fail     {"method": "…", "status": 500, "error": "INTERNAL_SERVER_ERROR", "count": 1,
                         "after": false}  (after: do the work, then answer the failure)
    POST /fake/settings {"webhook_telephony": false, "public_links_only": true}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..common import add_fake_routes, json_body
from . import telephony
from .state import RestError

if TYPE_CHECKING:
    from .server import FakeBitrix24


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def add_control_routes(app: web.Application, fake: FakeBitrix24) -> None:
    portal = fake.portal

    async def state(request: web.Request) -> web.Response:
        registrations = [
            {
                **{k: v for k, v in asdict(r).items() if k not in ("entity", "shown")},
                "shown": sorted(r.shown),
                "entity": f"{r.entity.type}:{r.entity.id}" if r.entity else "",
            }
            for r in portal.registrations.values()
        ]
        return web.json_response(
            {
                "lines": list(portal.lines.values()),
                "registrations": registrations,
                "statistics": portal.statistics,
                "activities": portal.activities,
                "files": list(portal.files.values()),
                "transcripts": portal.transcripts,
                "comments": portal.comments,
                "handlers": portal.handlers,
                "entities": [asdict(e) for e in portal.entities],
            }
        )

    async def install(request: web.Request) -> web.Response:
        body = await json_body(request)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _bad("give 'url': the application's installation handler")
        tokens = portal.issue_tokens()
        answer = await fake.post_event(
            url,
            "ONAPPINSTALL",
            {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "ru"},
            fake.auth_block(request, tokens),
        )
        return web.json_response(answer)

    async def click(request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            employee = portal.employee(body.get("user_id"))
        except RestError as exc:
            return _bad(exc.description)
        phone = body.get("phone")
        if not isinstance(phone, str) or not phone.lstrip("+").isdigit():
            return _bad("give 'phone': the number the agent clicked")
        line = next(iter(portal.lines), "")
        registered = telephony.register(
            portal,
            {
                "USER_ID": employee.id,
                "PHONE_NUMBER": phone,
                "TYPE": 1,
                "LINE_NUMBER": line,
                "SHOW": 1,
                "CRM_ENTITY_TYPE": body.get("entity_type"),
                "CRM_ENTITY_ID": body.get("entity_id"),
            },
        )
        data = {
            "PHONE_NUMBER": phone,
            "PHONE_NUMBER_INTERNATIONAL": phone,
            "EXTENSION": "",
            "USER_ID": str(employee.id),
            "CALL_LIST_ID": "0",
            "LINE_NUMBER": line,
            "IS_MOBILE": "0",
            "CALL_ID": registered["CALL_ID"],
            "CRM_ENTITY_TYPE": registered["CRM_ENTITY_TYPE"],
            "CRM_ENTITY_ID": str(registered["CRM_ENTITY_ID"]),
        }
        tokens = portal.issue_tokens()
        handlers = [h["handler"] for h in portal.handlers if h["event"] == "ONEXTERNALCALLSTART"]
        answers = [
            await fake.post_event(url, "ONEXTERNALCALLSTART", data, fake.auth_block(request, tokens))
            for url in handlers
        ]
        return web.json_response({"call_id": registered["CALL_ID"], "handlers": answers})

    async def expire(request: web.Request) -> web.Response:
        return web.json_response({"expired": portal.expire_tokens()})

    async def settings(request: web.Request) -> web.Response:
        body = await json_body(request)
        changed: dict[str, Any] = {}
        for name in ("webhook_telephony", "public_links_only"):
            if isinstance(body.get(name), bool):
                setattr(portal, name, body[name])
                changed[name] = body[name]
        return web.json_response(changed)

    add_fake_routes(app, fake)
    app.router.add_get("/fake/state", state)
    app.router.add_post("/fake/install", install)
    app.router.add_post("/fake/click", click)
    app.router.add_post("/fake/expire", expire)
    app.router.add_post("/fake/settings", settings)
