"""The delivery lease and the bounds it must keep with the send's deadline.

A claim leases a delivery for REMINDERS_DELIVERY_LEASE_S; a send ends, whatever the
peer does, by REMINDERS_DELIVERY_TIMEOUT_S + SEND_MARGIN_S (delivery/deadline.py), and
its outcome is recorded right after. The lease must outlast both, so another
deliverer can claim the delivery again only once the first send has certainly given
up, or its process is gone or frozen (docs/decisions/delivery-outbox.md, "Fencing").
"""

from __future__ import annotations

from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings.setting import integer

# How long after its deadline a send may still take to end: the watchdog's shutdown
# of the socket, the event loop's cancellation, the thread's hand-back.
SEND_MARGIN_S = 2
# What the lease keeps beyond the deadline and SEND_MARGIN_S: recording the outcome.
RECORD_MARGIN_S = 3
LEASE_MARGIN_S = SEND_MARGIN_S + RECORD_MARGIN_S

DELIVERY_LEASE_S = integer(
    "REMINDERS_DELIVERY_LEASE_S",
    60,
    "how long a claim leases a delivery: another deliverer may send it again only after "
    f"that; must exceed REMINDERS_DELIVERY_TIMEOUT_S by more than {LEASE_MARGIN_S}",
    2,
    86_400,
)


def check_lease(lease_s: float, timeout_s: float) -> None:
    """Refuse a lease a send could outlive (ConfigError naming both settings)."""
    if lease_s <= timeout_s + LEASE_MARGIN_S:
        raise ConfigError(
            f"REMINDERS_DELIVERY_LEASE_S ({lease_s:g}) must be longer than "
            f"REMINDERS_DELIVERY_TIMEOUT_S ({timeout_s:g}) plus {LEASE_MARGIN_S} s (the send's "
            f"{SEND_MARGIN_S} s margin past its deadline and recording the outcome): a send "
            "could outlive its lease and another deliverer send the reminder again meanwhile"
        )
