"""Status and directory events (webhooks.md §4): poll XAPI, diff against the persisted view, publish."""
