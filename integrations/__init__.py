"""Integrations of trading bots with the service (each runs in the bot's own environment)."""
