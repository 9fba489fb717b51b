"""The project's own errors. Each carries a message fit for one line on a terminal."""


class RemindersError(Exception):
    """Base class: anything the CLI reports as one clear line."""


class ConfigError(RemindersError):
    """A setting or an argument is invalid."""


class DatabaseUnavailable(RemindersError):
    """The reminders database cannot be reached."""


class LockLost(RemindersError):
    """The run's advisory lock session is gone; dispatching must stop."""
