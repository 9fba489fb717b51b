"""deploy/helm/values.yaml parses, names only settings the Dagster Helm chart has, and
wires the Secrets as the chart's templates pass them on.

The chart is not vendored and no rendering runs here: a Helm engine does install from
PyPI (helm-python-sdk bundles Helm's Go SDK), but the chart itself is published only
in the Dagster chart repository, which the test machines cannot reach. The 1.13.27
tag of the dagster repository could not be read either, so CHART_KEYS below is
transcribed from helm/dagster/values.schema.json at dagster commit
bdb8547fab497826eeec292bc160b549a0a329ef (checked key by key for what these values
use; that schema has no `replicaCount` for a user deployment, which an earlier copy of
this list had), and the wiring tests follow the templates at the commits named at
them. The run-pod side is pinned exactly: dagster-k8s 0.29.27 (released with 1.13.27)
turns a container context's env_secrets into `secretRef: {name}` with no `optional`,
and keeps each `env` entry whole. A key not on CHART_KEYS fails the test; add one only
after checking the chart. "*" marks a free-form mapping (Kubernetes objects); a list
holds the schema of its items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "values.yaml"

IMAGE = {"repository": None, "tag": None, "pullPolicy": None}
SECRET_REFS = [{"name": None}]
# Kubernetes' SecretEnvSource (envSecrets items) and EnvVar (items of a list `env`).
SECRET_ENV_SOURCES = [{"name": None, "optional": None}]
KEY_REF = {"name": None, "key": None, "optional": None}
ENV_VARS = [
    {
        "name": None,
        "value": None,
        "valueFrom": {
            "secretKeyRef": KEY_REF,
            "configMapKeyRef": KEY_REF,
            "fieldRef": "*",
            "resourceFieldRef": "*",
        },
    }
]
USER_DEPLOYMENT = {
    "name": None,
    "image": IMAGE,
    "dagsterApiGrpcArgs": None,
    "codeServerArgs": None,
    "includeConfigInLaunchedRuns": {"enabled": None},
    "deploymentNamespace": None,
    "port": None,
    # The schema also takes a mapping; these values use the list (the test wants one).
    "env": ENV_VARS,
    "envConfigMaps": SECRET_REFS,
    "envSecrets": SECRET_ENV_SOURCES,
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
}
K8S_RUN_LAUNCHER = {
    "image": IMAGE,
    "imagePullPolicy": None,
    "jobNamespace": None,
    "loadInclusterConfig": None,
    "kubeconfigFile": None,
    "envConfigMaps": SECRET_REFS,
    "envSecrets": SECRET_ENV_SOURCES,
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
    "computeLogManager": {
        "type": None,
        "config": {
            "azureBlobComputeLogManager": "*",
            "gcsComputeLogManager": "*",
            "s3ComputeLogManager": "*",
            "customComputeLogManager": "*",
        },
    },
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


def test_a_user_deployment_replica_count_is_not_a_chart_setting() -> None:
    # deployment-user.yaml (dagster commit 36f72b1733aedb192152974dd0f8d48aa70b6844)
    # writes `replicas: 1` whatever the values say.
    found = unknown_keys(
        {"dagster-user-deployments": {"deployments": [{"replicaCount": 2}]}}, CHART_KEYS
    )
    assert found == ["dagster-user-deployments.deployments.replicaCount"]


def test_an_unknown_key_is_found() -> None:
    assert unknown_keys({"runLauncher": {"typo": 1}}, CHART_KEYS) == ["runLauncher.typo"]
