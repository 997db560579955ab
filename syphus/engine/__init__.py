"""The engine: one query from plugin to record, rate-limited, retried, paid for once."""
