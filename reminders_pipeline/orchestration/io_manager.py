"""Op outputs kept in Dagster's own storage, so a run needs nothing from a worker's disk.

The reminders job's outputs are a few small values (a date, counts). Dagster's
default IO manager pickles them to $DAGSTER_HOME/storage on the run worker's disk,
so a re-execution from failure on another host or a new pod (an empty disk) could
not load them. This IO manager writes each output as JSON into the metadata of the
step's HANDLED_OUTPUT event, in the instance's event log: Postgres in production,
shared by every process; SQLite under DAGSTER_HOME for `dagster dev`. A re-executed
step reads its inputs back from the parent run's events. The values also show in the
UI next to each step, and go away with the run when it is deleted.

Only the types below are encoded: an op that starts returning something else fails
at once, naming the type, instead of at the next re-execution.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from dagster import (
    DagsterEventType,
    InitResourceContext,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    io_manager,
)

from reminders_pipeline.core.due import DueSelection
from reminders_pipeline.core.runlog import RunCounts

VALUE_KEY = "stored_value"
# Dataclasses an op may return, by name (the name is what the event log stores).
DATACLASSES: dict[str, type] = {cls.__name__: cls for cls in (DueSelection, RunCounts)}


def encode(value: Any) -> Any:
    """A JSON-ready form of value; raises TypeError for a type this module does not know."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in DATACLASSES:
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__type__": type(value).__name__, "fields": fields}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise TypeError(
        f"cannot keep an op output of type {type(value).__name__} in Dagster's storage: "
        "add it to reminders_pipeline.orchestration.io_manager.DATACLASSES or return plain values"
    )


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__date__" in data:
        return date.fromisoformat(data["__date__"])
    if "__type__" in data:
        cls = DATACLASSES[data["__type__"]]
        return cls(**{k: decode(v) for k, v in data["fields"].items()})
    return {k: decode(v) for k, v in data["__dict__"].items()}


class EventLogIOManager(IOManager):
    """Outputs into their HANDLED_OUTPUT event's metadata; inputs from the producing run."""

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        context.add_output_metadata({VALUE_KEY: MetadataValue.json({"value": encode(obj)})})

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        assert upstream is not None
        # In a re-execution, upstream.run_id is the run that produced the output.
        records = context.instance.get_records_for_run(
            run_id=upstream.run_id, of_type=DagsterEventType.HANDLED_OUTPUT
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is None or event.step_key != upstream.step_key:
                continue
            handled = event.event_specific_data
            if handled.output_name == upstream.name and VALUE_KEY in handled.metadata:
                return decode(handled.metadata[VALUE_KEY].value["value"])
        raise FileNotFoundError(
            f"no stored value for output {upstream.step_key}.{upstream.name} of run "
            f"{upstream.run_id} in Dagster's event log (was it produced by another IO manager?)"
        )


@io_manager(
    description="Op outputs as JSON in Dagster's event log (Postgres in production): "
    "re-execution needs nothing from a worker's local disk."
)
def event_log_io_manager(_init_context: InitResourceContext) -> EventLogIOManager:
    return EventLogIOManager()
