"""Cache invalidation receivers (see events/caching)."""
