"""Every Bitrix24 error answer of docs/crm.md turned into what it means for the event (no network)."""

from __future__ import annotations

import time

import pytest

from tcxhooks.dispatcher.crm.bitrix24.api import classify
from tcxhooks.dispatcher.crm.client import Answer


def answer(status: int, code: str, description: str = "", **extra: object) -> Answer:
    body = {"error": code, "error_description": description, **extra}
    return Answer(status, body, str(body), {})


@pytest.mark.parametrize(
    ("status", "code", "description", "verdict"),
    [
        (503, "QUERY_LIMIT_EXCEEDED", "Too many requests", "retry"),
        (500, "INTERNAL_SERVER_ERROR", "Internal server error", "retry"),
        (500, "ERROR_UNEXPECTED_ANSWER", "Server returned an unexpected response", "retry"),
        (401, "NO_AUTH_FOUND", "Wrong authorization data", "gone"),
        (401, "INVALID_CREDENTIALS", "Invalid request credentials", "gone"),
        (401, "insufficient_scope", "The request requires higher privileges", "gone"),
        (401, "ACCESS_DENIED", "REST is available only on commercial plans", "gone"),
        (401, "user_access_error", "The user does not have access to the application", "gone"),
        (401, "OVERLOAD_LIMIT", "REST API is blocked due to overload", "gone"),
        (503, "OVERLOAD_LIMIT", "REST API is blocked due to overload", "gone"),
        (403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method", "gone"),
        (403, "PORTAL_DELETED", "Portal was deleted", "gone"),
        (404, "ERROR_METHOD_NOT_FOUND", "Method not found!", "gone"),
        (400, "ERROR_CORE", "Unsupported phone number format", "dead"),
        (400, "ERROR_CORE", "Unknown TYPE", "dead"),
        (400, "ERROR_CORE", "CALL_START_DATE should be in the ISO-8601 format", "dead"),
        (400, "ERROR_CORE", "User is not found or is not active", "dead"),
        (400, "INVALID_ARGUMENT", "CALL_ID must be a string", "dead"),
        (400, "ERROR_CORE", "Call is not found (call should be registered prior to finishing)", "retry"),
        (400, "", "Call is not found in the statistic table. It looks like it is not finished yet.", "retry"),
        (400, "ERROR_CORE", "Unexpected database error", "retry"),
    ],
)
def test_error_answers_get_their_documented_verdict(status: int, code: str, description: str, verdict: str) -> None:
    error = classify("telephony.externalCall.finish", answer(status, code, description))
    assert (error.verdict, error.code, error.status) == (verdict, code, status)
    assert description in str(error)


def test_operation_time_limit_waits_until_the_portal_releases_the_method() -> None:
    reset = time.time() + 120
    error = classify(
        "telephony.externalCall.register",
        answer(429, "OPERATION_TIME_LIMIT", "Method is blocked", time={"operating_reset_at": reset}),
    )
    assert error.verdict == "retry" and error.retry_after is not None and 110 < error.retry_after <= 120
    assert classify("user.get", answer(429, "OPERATION_TIME_LIMIT", "x")).retry_after == 60.0


def test_an_answer_that_is_not_json_is_retried() -> None:
    error = classify("user.get", Answer(502, None, "<html>Bad gateway</html>", {}))
    assert error.verdict == "retry" and "Bad gateway" in str(error)
