"""Delivery channels.

A reminder is created as a row of the notifications outbox. A channel says in
which state the row starts: the in-app inbox reads the outbox directly, so the
row *is* the delivered reminder. Channels that leave the database (email,
webhook) start rows as 'pending' and a deliverer drains them with retries,
counting `attempts`; they plug in here.
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


CHANNELS: dict[str, DeliveryChannel] = {"in_app": InAppChannel()}
