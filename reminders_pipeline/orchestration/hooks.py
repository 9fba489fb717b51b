"""The failed run's own page names the next step, as the failure alert does."""

from __future__ import annotations

from dagster import HookContext, HookDefinition, failure_hook

from reminders_pipeline.alerts.messages import next_step_after_failure


def next_step_on_failure(delivery: bool) -> HookDefinition:
    """A hook that logs, in the failed step's run log, what to do next."""

    @failure_hook(name="delivery_next_step" if delivery else "reminders_next_step")
    def log_next_step(context: HookContext) -> None:
        run = context.instance.get_run_by_id(context.run_id)
        partition = run.tags.get("dagster/partition") if run else None
        context.log.error(f"Next: {next_step_after_failure(delivery, partition)}")

    return log_next_step
