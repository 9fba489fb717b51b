"""Moved to tests/helpers/runs.py (shared by the integration and acceptance tiers).

Only branches written before the move still import this name; import
tests.helpers.runs instead, and delete this file once nothing does.
"""

from tests.helpers.runs import *  # noqa: F403
