"""Signal receivers of the booking app (filled in by the booking work)."""
