"""The Dagster layer: definitions, jobs, ops, resources, schedules, sensors, and the CLI's
Dagster home and launch.

Ops only wire resources to the services below them.
"""
