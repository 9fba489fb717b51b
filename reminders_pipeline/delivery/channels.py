"""Delivery channels, by name.

The in-app channel is core's (core/channel.py): its outbox row is the delivered
reminder, and it is the only channel dispatch knows. Channels that leave the
database (email.py, webhook.py) are senders of the deliverer (deliverer.py), which
turns reminders into one `deliveries` row per channel and drains them with retries
(docs/decisions/delivery-outbox.md).
"""

from __future__ import annotations

from reminders_pipeline.core.channel import IN_APP, DeliveryChannel, InAppChannel

CHANNELS: dict[str, DeliveryChannel] = {IN_APP.name: IN_APP}

__all__ = ["CHANNELS", "DeliveryChannel", "InAppChannel"]
