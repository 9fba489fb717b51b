"""What dispatch needs to know of a delivery channel: its name and its rows' first state.

A reminder is created as a row of the notifications outbox. The in-app inbox
reads the outbox directly, so its row *is* the delivered reminder; channels that
leave the database (delivery/) start rows as 'pending'. Defined here, below
delivery/, so that core never imports the layer above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DeliveryChannel(Protocol):
    name: str
    initial_state: str


@dataclass(frozen=True)
class InAppChannel:
    name: str = "in_app"
    initial_state: str = "delivered"


IN_APP = InAppChannel()
