"""tcxhooks dispatcher service."""
