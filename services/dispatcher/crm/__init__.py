"""CRM adapters: delivery sinks that turn each event into a short sequence of a CRM's API calls.

The framework every adapter builds on (docs/crm.md):

    event.CrmEvent        the flat view of an event adapters read
    plan.Call, Mapping    the pure mapping: (event, leg state) → next call, answer → new state
    engine.run_steps      drives a mapping, storing the leg state after every call
    legstate.LegStore     leg states, adapter values (tokens) and click-to-call requests in the store
    ratelimit.RateLimiter a CRM's request budget with a priority lane for real-time steps
    client.JsonApi        aiohttp, limiter, timeouts and secret-free errors for one CRM
    errors.CrmError       a failed request and what it means for the event (retry / dead / gone)
    sink.CrmSink          what the dispatcher calls: deliver, run, routes, check, close
"""

from __future__ import annotations

from .client import Answer, JsonApi
from .engine import Trace, run_steps
from .errors import CrmError
from .event import CrmEvent, Segment
from .legstate import Click, LegStore, same_number
from .plan import Call, Mapping, Upload
from .ratelimit import RateLimiter
from .sink import (
    CallRefused,
    CheckLine,
    CrmEndpoint,
    CrmSink,
    PlaceCall,
    PlacedCall,
    Route,
    SinkDeps,
    SinkReply,
    delivered,
    failed,
    fresh,
)

__all__ = [
    "Answer",
    "Call",
    "CallRefused",
    "CheckLine",
    "Click",
    "CrmEndpoint",
    "CrmError",
    "CrmEvent",
    "CrmSink",
    "JsonApi",
    "LegStore",
    "Mapping",
    "PlaceCall",
    "PlacedCall",
    "RateLimiter",
    "Route",
    "Segment",
    "SinkDeps",
    "SinkReply",
    "Trace",
    "Upload",
    "delivered",
    "failed",
    "fresh",
    "run_steps",
    "same_number",
]
