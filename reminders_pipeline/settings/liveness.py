"""How long a run may go without hearing from its peer (docs/decisions/lock-scope.md).

One setting moves both bounds. On the server, every session a run holds ends once
its client has said nothing for REMINDERS_RUN_SILENCE_S while idle (in a
transaction or not), or leaves data unacknowledged that long: the lock goes with
the session. In the run's process, a watchdog stops the run once the server has
answered nothing for as long. A statement that is working on the server is never
cut: there is no statement timeout, so a long healthy batch runs to its end.
"""

from __future__ import annotations

from dataclasses import dataclass

from reminders_pipeline.settings.setting import FromEnv, bound, integer

RUN_SILENCE_S = integer(
    "REMINDERS_RUN_SILENCE_S",
    120,
    "how long a run's sessions may stay silent: the server then ends them (and frees "
    "the lock), and the run's watchdog stops the run when the server stays silent as long",
    5,
    3600,
)
RUN_RECORD_RETRY_S = integer(
    "REMINDERS_RUN_RECORD_RETRY_S",
    60,
    "how long a run keeps retrying its final write (its row's outcome) while the "
    "database is away, before it gives up and reports what it knows",
    0,
    3600,
)


@dataclass(frozen=True)
class LivenessSettings(FromEnv):
    silence_s: int = bound(RUN_SILENCE_S)
    record_retry_s: int = bound(RUN_RECORD_RETRY_S)

    @property
    def probe_interval_s(self) -> float:
        """How often the watchdog asks the server whether it still answers."""
        return max(1.0, self.silence_s / 4)

    @property
    def keepalive_idle_s(self) -> int:
        """TCP keepalives: idle + 3 probes every interval end a vanished peer within
        about half the silence bound (30 + 3 x 10 s at the default)."""
        return max(1, self.silence_s // 4)

    @property
    def keepalive_interval_s(self) -> int:
        return max(1, self.silence_s // 12)
