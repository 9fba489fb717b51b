"""Core services: the run lock, the due rule, dispatch, the run log and one run's steps.

Plain Python: no Dagster, no web framework.
"""
