"""What each alert says. One Alert renders as a log line, Slack text, JSON and email."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from reminders_pipeline.core.zombies import Zombie
from reminders_pipeline.db.lock_holder import LockHolder


@dataclass(frozen=True)
class Alert:
    """facts: shown in their order; a fact whose value is None is left out."""

    kind: str
    title: str
    text: str
    facts: dict[str, str | None] = field(default_factory=dict)
    link: str | None = None

    def __post_init__(self) -> None:
        facts = {key: value for key, value in self.facts.items() if value is not None}
        object.__setattr__(self, "facts", facts)

    def as_text(self) -> str:
        lines = [self.title, self.text]
        lines += [f"{key}: {value}" for key, value in self.facts.items()]
        if self.link:
            lines.append(f"link: {self.link}")
        return "\n".join(line for line in lines if line)

    def as_json(self) -> dict[str, Any]:
        return {"source": "reminders_pipeline", **asdict(self)}

    def as_slack(self) -> dict[str, Any]:
        """The `text` field is all a Slack-compatible incoming webhook needs (also Mattermost)."""
        body = "\n".join(f"*{key}*: {value}" for key, value in self.facts.items())
        link = f"\n<{self.link}|Open in Dagster>" if self.link else ""
        return {"text": f":warning: *{self.title}*\n{self.text}\n{body}{link}".strip()}

    def as_email(self, sender: str, recipients: list[str]) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[reminders] {self.title}"
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message.set_content(self.as_text() + "\n")
        return message


def run_url(base_url: str | None, run_id: str) -> str | None:
    return f"{base_url.rstrip('/')}/runs/{run_id}" if base_url else None


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else "unknown"


def duration(elapsed: timedelta) -> str:
    """Exact to the second and never rounded up: "45 s", "30 min", "1 min 30 s"
    (REMINDERS_LONG_RUN_S=90 reads "1 min 30 s", not "2 min")."""
    total = int(elapsed.total_seconds())
    if total < 60:
        return f"{total} s"
    whole, seconds = divmod(total, 60)
    return f"{whole} min" if seconds == 0 else f"{whole} min {seconds} s"


def elapsed_for(elapsed: timedelta, threshold: timedelta) -> str:
    """How long, in the threshold's terms: whole minutes (floored) against a whole-minute
    threshold, to the second against one with seconds, so the two always compare."""
    if threshold.total_seconds() % 60 or elapsed.total_seconds() < 60:
        return duration(elapsed)
    return duration(timedelta(minutes=elapsed.total_seconds() // 60))


def long_run_alert(
    *,
    run_id: str | None,
    started_at: datetime | None,
    elapsed: timedelta,
    threshold: timedelta,
    source: str,
    holds_lock: bool | None,
    link: str | None = None,
    reminder_runs_id: int | None = None,
) -> Alert:
    how_long = elapsed_for(elapsed, threshold)
    text = f"A reminders run has been in progress for {how_long}."
    if holds_lock is False:
        text += (
            " It does not hold the reminders run lock, so its worker is probably gone"
            " (host crash?): if so, terminate the run in the Dagster UI to free the queue."
        )
    facts = {
        "run id": run_id or "none (run outside Dagster)",
        "started": _when(started_at),
        "elapsed": how_long,
        "threshold": duration(threshold),
        "seen in": source,
        "reminder_runs id": None if reminder_runs_id is None else str(reminder_runs_id),
        "holds the run lock": None if holds_lock is None else ("yes" if holds_lock else "no"),
    }
    return Alert("long_run", f"Reminders run running for {how_long}", text, facts, link)


def next_step_after_failure(delivery: bool, partition: str | None) -> str:
    """What the operator does after fixing the cause: a failed day is not done."""
    if delivery:
        return (
            "fix the cause named above; the waiting deliveries go out on the next"
            " delivery_job run (delivery_retry_schedule, or `reminders deliver`)"
        )
    day = partition or "DAY"
    return (
        f"fix the cause named above, then run the day again: `reminders backfill --from {day}"
        f" --to {day}` (or re-execute this run in the UI); reminders already created are"
        " not created twice"
    )


def run_failed_alert(
    *,
    run_id: str,
    job_name: str,
    error: str,
    partition: str | None,
    link: str | None,
    next_step: str,
) -> Alert:
    facts = {
        "run id": run_id,
        "job": job_name,
        "partition": partition or None,
        "error": error,
        "next step": next_step,
    }
    text = f"{error}\n\nNext: {next_step}"
    return Alert(
        "run_failed", f"Reminders run failed ({partition or run_id[:8]})", text, facts, link
    )


def repeated_skips_alert(
    *,
    count: int,
    since: datetime | None,
    last_reason: str | None,
    holder: LockHolder | None,
    recorded_holder: str | None,
) -> Alert:
    facts = {
        "skipped in a row": str(count),
        "first skip": _when(since),
        "last reason": last_reason or None,
        "blocked by (last skip)": recorded_holder or None,
        "lock holder now": holder.describe() if holder is not None else "nobody",
        "pid": str(holder.pid) if holder is not None else None,
    }
    return Alert(
        "repeated_skips",
        f"Reminders skipped {count} times in a row",
        "The last reminders runs were all skipped. This usually means a stuck run is holding"
        " the run lock or blocking the queue.",
        facts,
    )


def stale_lock_alert(*, holder: LockHolder, why: str, link: str | None = None) -> Alert:
    facts = {
        "pid": str(holder.pid),
        "application_name": holder.application_name or "",
        "session since": _when(holder.since),
        "run id": holder.run_id or "none",
        "client": holder.client_addr or "local socket",
        "why stale": why,
        "to free it": f"SELECT pg_terminate_backend({holder.pid});",
    }
    return Alert(
        "stale_lock",
        f"Stale reminders run lock held by pid {holder.pid}",
        "The reminders run lock is held by a session whose run is not in progress, so every"
        " run will be skipped. It is not terminated automatically: check the session, then"
        f" terminate backend pid {holder.pid} if it is indeed stale.",
        facts,
        link,
    )


def zombie_alert(zombie: Zombie, now: datetime, grace: timedelta, link: str | None) -> Alert:
    run = zombie.run
    facts = {
        "run id": run.run_id,
        "status was": run.status,
        "in that status since": _when(run.since),
        "no session since": _when(zombie.missing_since),
        "grace": duration(grace),
        "partition": run.partition or None,
    }
    return Alert(
        "zombie_run",
        f"Reminders run {run.run_id[:8]} marked failed: its worker is gone",
        f"Dagster showed the run {run.status} but no reminders database session existed for"
        f" it for {elapsed_for(zombie.missing_for(now), grace)}. It was marked failed to free"
        " the run queue; queued runs start now. Check the host that ran it.",
        facts,
        link,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


def dead_deliveries_alert(*, count: int, last_id: int, recent_errors: str | None) -> Alert:
    return Alert(
        kind="dead_deliveries",
        title=f"{count} reminder deliveries are dead",
        text=(
            "Deliveries were given up (a permanent error, or REMINDERS_DELIVERY_MAX_ATTEMPTS"
            f" reached); the mentors did not get these reminders by email or webhook. Latest: "
            f"{recent_errors or 'no error recorded'}"
        ),
        facts={"dead since last alert": str(count), "latest dead delivery id": str(last_id)},
    )


def pending_deliveries_alert(*, oldest: timedelta, threshold: timedelta) -> Alert:
    return Alert(
        kind="pending_deliveries",
        title=f"A reminder delivery has waited {elapsed_for(oldest, threshold)}",
        text=(
            f"The oldest pending delivery is older than {duration(threshold)}"
            " (REMINDERS_DELIVERY_MAX_PENDING_AGE_S): is delivery_job running, is its"
            " schedule on, is a channel configured and its server up?"
        ),
        facts={"oldest pending": elapsed_for(oldest, threshold), "threshold": duration(threshold)},
    )
