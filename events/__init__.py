"""farmlink's event-sourcing runtime: event store, outbox and relay, inbox, hash chain, upcasting."""
