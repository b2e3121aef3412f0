"""What a failed CRM request means for the event being delivered.

    CrmError            one CRM request failed; `verdict` says what becomes of the event:
      "retry"           no usable answer or a passing refusal (network, timeout, 5xx, rate limit):
                        the outbox tries again later (after `retry_after` seconds when the CRM said so)
      "dead"            the CRM refused this event's request for good (a value it cannot take):
                        no more attempts, kept as dead for `tcxhooks redeliver`
      "gone"            the CRM refuses us (credentials, plan, permissions): the adapter stops like an
                        endpoint answering 410, its events wait for `tcxhooks endpoints enable NAME`

A mapping sees every CrmError of its own calls first (`Mapping.on_error`) and may recover. A sink
turns it into its reply; it never reaches an RPC (so it is no DispatcherError, whose `code` is a gRPC
status, while this one's is the CRM's error code).
"""

from __future__ import annotations

VERDICTS = ("retry", "dead", "gone")


class CrmError(Exception):
    """A CRM request failed. `status` is the HTTP status (0: no answer), `code` the CRM's error code."""

    def __init__(
        self,
        message: str,
        *,
        verdict: str = "retry",
        status: int = 0,
        code: str = "",
        description: str = "",
        retry_after: float | None = None,
    ) -> None:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}")
        super().__init__(message)
        self.verdict = verdict
        self.status = status
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def but(self, verdict: str, retry_after: float | None = None) -> CrmError:
        """The same failure with another verdict (a mapping knows better than the client)."""
        return CrmError(
            str(self),
            verdict=verdict,
            status=self.status,
            code=self.code,
            description=self.description,
            retry_after=self.retry_after if retry_after is None else retry_after,
        )
