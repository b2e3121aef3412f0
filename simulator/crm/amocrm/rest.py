"""amoCRM's REST conventions as the fake speaks them (docs/crm.md, "amoCRM / Kommo"): problem-JSON errors,
JSON bodies, `filter[…]` queries, `_links` and paged listings.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .account import ENTITY_PATHS


class Invalid(Exception):
    """A request amoCRM refuses: the status and the problem-JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("detail", "")))
        self.status = status
        self.body = body


def problem(status: int, title: str, detail: str, **extra: Any) -> Invalid:
    return Invalid(
        status, {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail, **extra}
    )


def validation(request_id: str, path: str, detail: str, code: str = "NotSupportedChoice") -> Invalid:
    errors = [{"request_id": request_id, "errors": [{"code": code, "path": path, "detail": detail}]}]
    return problem(400, "Bad Request", "Request validation failed", **{"validation-errors": errors})


def link(request: web.Request, path: str) -> dict[str, Any]:
    return {"self": {"href": f"{request.url.origin()}{path}"}}


def entity_path(request: web.Request) -> str:
    entity = request.match_info["entity"]
    if entity not in ENTITY_PATHS:
        raise problem(404, "Not Found", f"Unknown entity type {entity}")
    return entity


def filter_values(request: web.Request, name: str) -> set[str]:
    """Values of `filter[name]`, `filter[name][]` and `filter[name][N]`."""
    prefix = f"filter[{name}]"
    return {v for k, v in request.query.items() if k == prefix or (k.startswith(prefix + "[") and k.endswith("]"))}


def listing(key: str, items: list[dict[str, Any]], request: web.Request) -> web.StreamResponse:
    try:
        limit = min(250, max(1, int(request.query.get("limit", "50") or 50)))
        page = max(1, int(request.query.get("page", "1") or 1))
    except ValueError:
        raise problem(400, "Bad Request", "limit and page must be numbers") from None
    shown = items[(page - 1) * limit : page * limit]
    if not shown:
        return web.Response(status=204)
    return web.json_response({"_page": page, "_links": {}, "_embedded": {key: shown}})


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise problem(400, "Bad Request", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise problem(400, "Bad Request", "Request body must be an object")
    return body


async def json_list(request: web.Request) -> list[dict[str, Any]]:
    try:
        body = await request.json()
    except ValueError:
        raise problem(400, "Bad Request", "Request body is not valid JSON") from None
    if not isinstance(body, list) or not body or not all(isinstance(i, dict) for i in body):
        raise problem(400, "Bad Request", "Request body must be a non-empty array of objects")
    if len(body) > 250:
        raise problem(400, "Bad Request", "Too many entities in one request (250 at most)")
    return body
