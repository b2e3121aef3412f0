"""tcxhooks media service."""
