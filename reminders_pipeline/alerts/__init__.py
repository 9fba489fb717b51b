"""Operator alerts: what they say (messages.py) and where they go (sinks.py), plain
Python; the Dagster resource the sensors call is orchestration/alert_resource.py."""
