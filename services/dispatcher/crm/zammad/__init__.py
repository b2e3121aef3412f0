"""Zammad generic CTI adapter (`[crm:NAME] type = zammad`): one caller-log row per call chain."""
