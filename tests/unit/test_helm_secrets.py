"""How deploy/helm/values.yaml hands settings and Secrets to the code server and run pods.

What the chart does with them (dagster commit dba87afb26ae634e8074aab3bcb383ee56f254c2,
dagster-user-deployments' helpers/_helpers.tpl and deployment-user.yaml; not confirmed
against the 1.13.27 tag, see test_helm_values.py): the code server's container gets each
envSecrets item whole (`optional` kept) and the `env` list as written; run pods get,
through includeConfigInLaunchedRuns, the envSecrets by name only and the `env` list
entry by entry. dagster-k8s 0.29.27 makes a name a required `secretRef`. So a Secret
named in envSecrets is required wherever a run starts, and an optional one must be read
key by key with `optional: true`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reminders_pipeline.settings import REGISTRY
from reminders_pipeline.settings.delivery_lease import check_lease

VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "values.yaml"
# Without these no pod can work: the reminders database.
REQUIRED_SECRETS = {"reminders-database"}


def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text())
    assert isinstance(loaded, dict)
    return loaded


def code_server() -> dict[str, Any]:
    [deployment] = values()["dagster-user-deployments"]["deployments"]
    return deployment


def code_server_env() -> list[dict[str, Any]]:
    env = code_server()["env"]
    assert isinstance(env, list), "env must be a list: a mapping cannot read a Secret's key"
    return env


def test_only_required_secrets_are_named_whole() -> None:
    launcher = values()["runLauncher"]["config"]["k8sRunLauncher"]
    for listing in (code_server()["envSecrets"], launcher["envSecrets"]):
        assert {item["name"] for item in listing} <= REQUIRED_SECRETS
    assert code_server()["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_optional_secrets_are_read_key_by_key() -> None:
    refs = [e["valueFrom"]["secretKeyRef"] for e in code_server_env() if "valueFrom" in e]
    assert {ref["name"] for ref in refs} == {"reminders-alerts", "reminders-delivery"}
    for entry in code_server_env():
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref == {"name": ref["name"], "key": entry["name"], "optional": True}


def test_every_variable_is_a_setting_and_secrets_come_from_secrets() -> None:
    for entry in code_server_env():
        setting = REGISTRY.get(entry["name"])
        assert setting is not None, f"{entry['name']} is not a REMINDERS_* setting"
        if setting.secret:
            assert "value" not in entry, f"{entry['name']} is a secret: read it from a Secret"


def test_the_plain_values_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = {e["name"]: e["value"] for e in code_server_env() if "value" in e}
    for name, value in plain.items():
        assert isinstance(value, str), f"{name}: quote it, Kubernetes wants a string"
        monkeypatch.setenv(name, value)
        REGISTRY[name].get()
    assert plain["REMINDERS_ENV"] == "production"
    lease = REGISTRY["REMINDERS_DELIVERY_LEASE_S"].get()
    check_lease(lease, REGISTRY["REMINDERS_DELIVERY_TIMEOUT_S"].get())


def test_the_delivery_settings_have_a_place() -> None:
    names = {entry["name"] for entry in code_server_env()}
    delivery = {
        "REMINDERS_CHANNELS",
        "REMINDERS_SMTP_URL",
        "REMINDERS_EMAIL_FROM",
        "REMINDERS_WEBHOOK_URL",
        "REMINDERS_WEBHOOK_SECRET",
        "REMINDERS_DELIVERY_TIMEOUT_S",
        "REMINDERS_DELIVERY_LEASE_S",
    }
    assert delivery <= names
