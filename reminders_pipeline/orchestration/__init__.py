"""The Dagster layer: definitions, job, ops, resources, schedule, sensors and launch.

Ops only wire resources to the services below them.
"""
