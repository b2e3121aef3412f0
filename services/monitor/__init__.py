"""tcxhooks monitor service."""
