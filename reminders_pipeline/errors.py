"""The project's own errors. Each carries a message fit for one line on a terminal."""


class RemindersError(Exception):
    """Base class: anything the CLI reports as one clear line."""


class ConfigError(RemindersError):
    """A setting or an argument is invalid."""


class DatabaseError(RemindersError):
    """A statement failed, or the session died under it (the driver's error is the cause).

    `sqlstate` is PostgreSQL's error code when the server sent one (e.g. '57014'
    for a cancelled statement), so callers can tell cases apart without the driver.
    """

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class DatabaseUnavailable(DatabaseError):
    """The reminders database cannot be reached."""


class ConnectionLost(DatabaseError):
    """The session died under a statement (network, server restart, pg_terminate_backend)."""


class MigrationBlocked(RemindersError):
    """A migration did not start: a reminders run held the run lock for the whole wait."""


class LockLost(RemindersError):
    """The run's advisory lock session is gone; dispatching must stop."""


class RunInterrupted(RemindersError):
    """A signal (SIGTERM, SIGINT) stopped the run; the message names it."""


class ActivityRefused(RemindersError):
    """A contact registration was refused; nothing was written.

    `problems` lists the refused rows (position, assignment_id, occurred_on,
    problem), the first few of them; `refused` is how many there were.
    """

    def __init__(self, message: str, problems: list[dict], refused: int) -> None:
        super().__init__(message)
        self.problems = problems
        self.refused = refused


class AssignmentNotFound(RemindersError):
    """No assignment has this id."""

    def __init__(self, assignment_id: int) -> None:
        super().__init__(f"assignment {assignment_id} does not exist")


class AssignmentClosed(RemindersError):
    """The assignment is closed: no contact, and no correction unless explicitly allowed."""

    def __init__(self, assignment_id: int) -> None:
        super().__init__(
            f"assignment {assignment_id} is closed; contact registration refuses it too. "
            'Send "allow_closed": true to correct it anyway'
        )


class CorrectionRefused(RemindersError):
    """A manual correction is invalid; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class TokenError(RemindersError):
    """An admin token cannot be created, found or revoked as asked."""


class UnsupportedPooler(ConfigError):
    """The run lock's connection goes through a pooler that does not keep one server
    connection per client (transaction or statement mode), or that could not be
    confirmed to: a session lock there would land on a connection nobody owns."""


def first_line(value: BaseException | str) -> str:
    """The first line of an error's message (its class name when it has none)."""
    text = str(value).strip()
    fallback = type(value).__name__ if isinstance(value, BaseException) else ""
    return (text.splitlines() or [fallback])[0]
