"""Delivery channels, by name.

The in-app channel is core's (core/channel.py): its outbox row is the delivered
reminder. Channels that leave the database (email, webhook) start rows as
'pending' and a deliverer drains them with retries, counting `attempts`; they
plug in here.
"""

from __future__ import annotations

from reminders_pipeline.core.channel import IN_APP, DeliveryChannel, InAppChannel

CHANNELS: dict[str, DeliveryChannel] = {IN_APP.name: IN_APP}

__all__ = ["CHANNELS", "DeliveryChannel", "InAppChannel"]
