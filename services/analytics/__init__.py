"""tcxhooks analytics service."""
