"""tcxhooks: 3CX V20 activity to CRM webhooks."""

__version__ = "0.1.0"
