"""The outbox and its delivery channels."""
