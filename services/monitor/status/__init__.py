"""Status and directory events (docs/webhooks.md §4): poll XAPI, diff against the persisted view, publish."""
