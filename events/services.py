"""Event services (filled in below)."""
