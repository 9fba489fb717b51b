"""Operator alerts: what they say (messages.py), where they go (sinks.py), and the
Dagster resource the sensors call (resource.py). messages and sinks are plain Python."""
