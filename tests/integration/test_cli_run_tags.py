"""A day run by `reminders run` counts on the job's Partitions page, as a UI launch does.

The page asks the webserver's GraphQL for the partition set's statuses, which
reads runs by two tags: the partition set and the code location's label. Here a
real `reminders run` process runs a day on the CLI's instance, then the same
GraphQL query the page sends runs against that instance, with the repository's
workspace loaded as the webserver loads it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunsFilter
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from reminders_pipeline.orchestration.launch import UI_LAUNCH_TAGS
from tests.helpers.runs import seed_assignments, today

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]

PARTITION_STATUSES = """
query ($selector: RepositorySelector!, $name: String!) {
  partitionSetOrError(repositorySelector: $selector, partitionSetName: $name) {
    __typename
    ... on PartitionSet {
      partitionStatusesOrError {
        __typename
        ... on PartitionStatuses { results { partitionName runStatus } }
      }
    }
  }
}
"""


def _statuses(dagster_home: str) -> dict[str, str | None]:
    target = WorkspaceFileTarget(paths=[str(ROOT / "workspace.yaml")])
    with (
        DagsterInstance.from_config(dagster_home) as instance,
        WorkspaceProcessContext(instance, target) as workspace,
    ):
        result = execute_dagster_graphql(
            workspace.create_request_context(),
            PARTITION_STATUSES,
            variables={
                "selector": {
                    "repositoryLocationName": "reminders_pipeline",
                    "repositoryName": "__repository__",
                },
                "name": "reminders_job_partition_set",
            },
        )
    assert not result.errors, result.errors
    statuses = result.data["partitionSetOrError"]["partitionStatusesOrError"]
    assert statuses["__typename"] == "PartitionStatuses", result.data
    return {r["partitionName"]: r["runStatus"] for r in statuses["results"]}


def test_a_cli_run_counts_on_the_jobs_partitions_page(reminders_cli, reminders_env, db):
    as_of = today()
    seed_assignments(db, 20, 0.5, as_of)
    result = reminders_cli("run", "--as-of", as_of.isoformat())
    assert result.returncode == 0, result.describe()

    statuses = _statuses(reminders_env["DAGSTER_HOME"])
    assert statuses[as_of.isoformat()] == "SUCCESS"
    assert statuses[(as_of - timedelta(days=1)).isoformat()] is None  # never run

    # The same tags a UI launch stores (partition set, code location, its label).
    with DagsterInstance.from_config(reminders_env["DAGSTER_HOME"]) as instance:
        assert len(instance.get_runs(filters=RunsFilter(tags=UI_LAUNCH_TAGS))) == 1
