"""Prints a new Ed25519 key for ticket QR codes: the TICKET_SIGNING_KEY line for the
environment, and the public key scanners will check with."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from booking.ticket_signing import key_generate


class Command(BaseCommand):
    help = "Print a new TICKET_SIGNING_KEY (Ed25519 seed) and its public key."

    def handle(self, *args: Any, **options: Any) -> None:
        seed, public = key_generate()
        self.stdout.write(f"TICKET_SIGNING_KEY={seed}")
        self.stdout.write(f"# public key: {public}")
