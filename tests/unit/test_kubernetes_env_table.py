"""docs/operations.md's environment tables stay true to deploy/helm/values.yaml and to
the settings registry (reminders_pipeline/settings).

"What each pod gets from the chart": its REMINDERS_* rows name exactly what the values
give the code server (its `env` list and the keys of its required Secret), each row's
source names the Secret the values read it from, and every name is a setting.
"Settings at a glance": every REMINDERS_* name (or `REMINDERS_X_*` pattern) is a setting,
or is read by workspace.grpc.yaml.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from reminders_pipeline.settings import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
# The keys of the required Secret (values.yaml's header): envSecrets hands over the
# whole Secret, so the values do not spell its keys out.
REQUIRED_SECRET_KEYS = {"reminders-database": ["REMINDERS_DATABASE_URL"]}


def table_rows(heading: str) -> list[list[str]]:
    """The cells of the first table after `heading` in docs/operations.md."""
    text = DOC.read_text()
    assert heading in text, f"docs/operations.md has no heading {heading!r}"
    rows = []
    for line in text[text.index(heading) :].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def names(cell: str) -> list[str]:
    return re.findall(r"`(REMINDERS_[A-Z0-9_*]+)`", cell)


def code_server_sources() -> dict[str, str]:
    """Each REMINDERS_* variable the values give the code server -> where from."""
    values: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    sources = {}
    for entry in deployment["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        sources[entry["name"]] = f"Secret `{ref['name']}`" if ref else "`env`"
    for secret in deployment["envSecrets"]:
        for key in REQUIRED_SECRET_KEYS[secret["name"]]:
            sources[key] = f"Secret `{secret['name']}`"
    return sources


def test_the_kubernetes_table_names_what_the_values_set() -> None:
    sources = code_server_sources()
    documented = {}
    for variable, code_server, run_pod, source in table_rows("### What each pod gets"):
        for name in names(variable):
            documented[name] = source
            assert code_server in ("yes", "if set") and run_pod == code_server, name
            assert (code_server == "if set") == ("(optional)" in source), name
    assert sorted(documented) == sorted(sources)
    for name, source in sources.items():
        assert source in documented[name], f"{name} comes from {source}"


def test_every_documented_setting_is_in_the_registry() -> None:
    workspace = (ROOT / "workspace.grpc.yaml").read_text()
    rows = table_rows("### What each pod gets") + table_rows("## Settings at a glance")
    found = [name for row in rows for name in names(row[0])]
    assert len(found) > 40
    for name in found:
        if "*" in name:
            assert any(fnmatch(known, name) for known in REGISTRY), f"{name} matches no setting"
        else:
            assert name in REGISTRY or name in workspace, f"{name} is not a setting"
