"""One REMINDERS_* variable: the Setting record, its parsers, and how it reads itself.

Parsing happens in Setting.get(), at call time; every error names the variable.
A record of several settings declares each field with bound() and reads them all
with FromEnv.from_env().
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reminders_pipeline.errors import ConfigError

T = TypeVar("T")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One REMINDERS_* variable. `get()` reads it now; blank counts as unset."""

    name: str
    kind: str  # for the docs: whole number, text, ...
    default: T
    doc: str
    parse: Callable[[Setting[Any], str], T] = field(repr=False)
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False  # a credential: deployed from a Secret (tests/unit/test_helm_secrets.py)
    default_text: str | None = None  # the default, when it is not a plain value

    def raw(self) -> str | None:
        value = os.environ.get(self.name)
        return value.strip() if value is not None and value.strip() else None

    def is_set(self) -> bool:
        return self.raw() is not None

    def get(self) -> T:
        raw = self.raw()
        return self.default if raw is None else self.parse(self, raw)

    def error(self, problem: str, label: str | None = None) -> ConfigError:
        return ConfigError(f"{label or self.name} {problem}")

    def check(self, value: int, label: str | None = None) -> int:
        """Hold a number given elsewhere (resource config) to this setting's bounds."""
        low, high = self.low, self.high
        if low is not None and high is not None and not low <= value <= high:
            raise self.error(f"must be between {low} and {high}, got {value}", label)
        if low is not None and value < low:
            raise self.error(f"must be at least {low}, got {value}", label)
        return value

    def describe_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default == []:
            return "unset"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return f"`{self.default}`"

    def describe_bounds(self) -> str:
        if self.choices:
            return " or ".join(f"`{option}`" for option in self.choices)
        if self.low is not None and self.high is not None:
            return f"{self.low} to {self.high}"
        if self.low is not None:
            return f"at least {self.low}"
        return ""


def parse_int(setting: Setting[Any], raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise setting.error(f"must be a whole number, got {raw!r}") from None
    return setting.check(value)


def parse_text(setting: Setting[Any], raw: str) -> str:
    return raw


def parse_choice(setting: Setting[Any], raw: str) -> str:
    value = raw.lower()
    if value not in setting.choices:
        raise setting.error(f"must be one of {setting.choices}: {value!r}")
    return value


def parse_switch(setting: Setting[Any], raw: str) -> bool:
    value = raw.lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise setting.error(f"must be on or off (also 1/0, true/false, yes/no), got {raw!r}")


def parse_timezone(setting: Setting[Any], raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise setting.error(f"is not a known timezone: {raw!r}") from None
    return raw


def parse_as_of(value: str, option: str = "as-of date") -> date:
    """Parse a YYYY-MM-DD date (never blank), with an error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be a date as YYYY-MM-DD, got {value!r}") from None


def parse_date(setting: Setting[Any], raw: str) -> str:
    parse_as_of(raw, setting.name)
    return raw


def parse_path(setting: Setting[Any], raw: str) -> Path:
    return Path(raw)


def parse_list(setting: Setting[Any], raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def integer(
    name: str, default: int | None, doc: str, low: int, high: int | None = None, **kw: Any
) -> Setting[Any]:
    return Setting(name, "whole number", default, doc, parse_int, low=low, high=high, **kw)


def string(
    name: str, default: str | None, doc: str, parse: Callable[..., Any] = parse_text, **kw: Any
) -> Setting[Any]:
    return Setting(name, "text", default, doc, parse, **kw)


def choice(name: str, default: str, doc: str, choices: tuple[str, ...]) -> Setting[str]:
    return Setting(name, "choice", default, doc, parse_choice, choices=choices)


def switch(name: str, default: bool, doc: str) -> Setting[bool]:
    return Setting(name, "on/off", default, doc, parse_switch)


def collect(modules: Iterable[ModuleType]) -> dict[str, Setting[Any]]:
    """Every Setting the modules hold, by name, in the order first met."""
    found: dict[str, Setting[Any]] = {}
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, Setting):
                found.setdefault(value.name, value)
    return found


def bound(setting: Setting[Any]) -> Any:
    """A record's field that from_env() reads from `setting`; its default is the setting's."""
    metadata = {"setting": setting}
    if isinstance(setting.default, list):
        return field(default_factory=lambda: list(setting.default), metadata=metadata)
    return field(default=setting.default, metadata=metadata)


class FromEnv:
    """Base of a frozen dataclass of settings, each field declared with bound()."""

    @classmethod
    def from_env(cls) -> Self:
        """The record with every bound field read from the environment now."""
        settings = {f.name: f.metadata.get("setting") for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{name: s.get() for name, s in settings.items() if s is not None})
