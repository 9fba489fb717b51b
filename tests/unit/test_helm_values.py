"""deploy/helm/values.yaml parses and names only settings the Dagster Helm chart has.

No helm binary or cluster here, and the chart's schema is not vendored: CHART_KEYS
below is the part of the chart's values.schema.json these values use, transcribed
from helm/dagster/values.schema.json in the dagster repository at commit
bdb8547fab497826eeec292bc160b549a0a329ef (a recent one; not confirmed to be the
1.13.27 release tag). A key not on it fails the test; add one only after checking
the chart. "*" marks a free-form mapping (environment, Kubernetes objects); a list holds
the schema of its items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "values.yaml"

IMAGE = {"repository": None, "tag": None, "pullPolicy": None}
SECRET_REFS = [{"name": None}]
USER_DEPLOYMENT = {
    "name": None,
    "image": IMAGE,
    "dagsterApiGrpcArgs": None,
    "codeServerArgs": None,
    "includeConfigInLaunchedRuns": {"enabled": None},
    "deploymentNamespace": None,
    "port": None,
    "env": "*",
    "envConfigMaps": SECRET_REFS,
    "envSecrets": SECRET_REFS,
    "annotations": "*",
    "nodeSelector": "*",
    "affinity": "*",
    "tolerations": "*",
    "podSecurityContext": "*",
    "securityContext": "*",
    "resources": "*",
    "livenessProbe": "*",
    "readinessProbe": "*",
    "startupProbe": "*",
    "labels": "*",
    "volumeMounts": "*",
    "volumes": "*",
    "schedulerName": None,
    "initContainers": "*",
    "sidecarContainers": "*",
    "replicaCount": None,
}
K8S_RUN_LAUNCHER = {
    "image": IMAGE,
    "imagePullPolicy": None,
    "jobNamespace": None,
    "loadInclusterConfig": None,
    "kubeconfigFile": None,
    "envConfigMaps": SECRET_REFS,
    "envSecrets": SECRET_REFS,
    "envVars": None,
    "volumeMounts": "*",
    "volumes": "*",
    "labels": "*",
    "failPodOnRunFailure": None,
    "resources": "*",
    "schedulerName": None,
    "securityContext": "*",
    "runK8sConfig": "*",
}
QUEUED_RUN_COORDINATOR = {
    "maxConcurrentRuns": None,
    "tagConcurrencyLimits": [{"key": None, "value": "*", "limit": None}],
    "dequeueIntervalSeconds": None,
    "dequeueNumWorkers": None,
    "dequeueUseThreads": None,
    "blockOpConcurrencyLimitedRuns": "*",
}
CHART_KEYS: dict[str, Any] = {
    "global": {
        "postgresqlSecretName": None,
        "dagsterHome": None,
        "serviceAccountName": None,
        "celeryConfigSecretName": None,
    },
    "postgresql": {
        "image": IMAGE,
        "enabled": None,
        "postgresqlHost": None,
        "postgresqlUsername": None,
        "postgresqlPassword": None,
        "postgresqlDatabase": None,
        "postgresqlParams": "*",
        "postgresqlScheme": None,
        "service": {"port": None},
    },
    "generatePostgresqlPasswordSecret": None,
    "dagster-user-deployments": {
        "enabled": None,
        "enableSubchart": None,
        "imagePullSecrets": SECRET_REFS,
        "deployments": [USER_DEPLOYMENT],
    },
    "runLauncher": {
        "type": None,
        "config": {"k8sRunLauncher": K8S_RUN_LAUNCHER, "customRunLauncher": "*"},
    },
    "dagsterDaemon": {
        "enabled": None,
        "image": IMAGE,
        "runCoordinator": {
            "enabled": None,
            "type": None,
            "config": {"queuedRunCoordinator": QUEUED_RUN_COORDINATOR},
        },
        "env": "*",
        "envConfigMaps": SECRET_REFS,
        "envSecrets": SECRET_REFS,
        "resources": "*",
        "runMonitoring": "*",
        "runRetries": "*",
    },
    "computeLogManager": "*",
    "telemetry": {"enabled": None},
    "additionalInstanceConfig": "*",
}


def unknown_keys(values: Any, schema: Any, path: str = "") -> list[str]:
    """Paths in values that schema does not name."""
    if schema == "*" or schema is None:
        return []
    if isinstance(schema, list):
        assert isinstance(values, list), f"{path} should be a list"
        return [k for i, item in enumerate(values) for k in unknown_keys(item, schema[0], path)]
    assert isinstance(values, dict), f"{path} should be a mapping"
    found = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in schema:
            found.append(where)
        else:
            found += unknown_keys(value, schema[key], where)
    return found


def test_the_helm_values_parse_and_name_only_chart_settings() -> None:
    values = yaml.safe_load(VALUES.read_text())
    assert isinstance(values, dict)
    assert unknown_keys(values, CHART_KEYS) == []


def test_the_helm_values_keep_the_production_settings() -> None:
    values = yaml.safe_load(VALUES.read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "reminders/singleton", "limit": 1} in limits
    assert values["dagsterDaemon"]["runMonitoring"]["maxResumeRunAttempts"] == 0
    [code_server] = values["dagster-user-deployments"]["deployments"]
    assert "reminders_pipeline.orchestration.definitions" in code_server["codeServerArgs"]
    assert {"name": "reminders-database"} in code_server["envSecrets"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert {"name": "reminders-database"} in launcher["envSecrets"]


# Keys the schema accepts but the chart's templates never read: setting one does
# nothing, silently. deployment-user.yaml (same commit) writes `replicas: 1` whatever
# replicaCount says.
IGNORED_BY_TEMPLATES = {("dagster-user-deployments", "deployments", "replicaCount")}


def test_the_helm_values_set_nothing_the_chart_ignores() -> None:
    values = yaml.safe_load(VALUES.read_text())
    set_but_ignored = [
        key
        for section, listing, key in IGNORED_BY_TEMPLATES
        for item in values[section][listing]
        if key in item
    ]
    assert set_but_ignored == []


def test_an_unknown_key_is_found() -> None:
    assert unknown_keys({"runLauncher": {"typo": 1}}, CHART_KEYS) == ["runLauncher.typo"]
