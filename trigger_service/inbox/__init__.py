"""The inbox: events are stored here before the sender gets its 2xx, and claimed from here."""

from trigger_service.inbox.store import ClaimedEvent, Inbox, StoreResult

__all__ = ["ClaimedEvent", "Inbox", "StoreResult"]
