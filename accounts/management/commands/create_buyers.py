"""Bulk-creates buyer accounts for load tests and rehearsals; optionally writes a JWT
access token per buyer so the load generator never touches the token endpoint while it
measures.

    python manage.py create_buyers --count 3000 --prefix loadtest \\
        --password-file var/loadtest/password --tokens var/loadtest/buyers.csv

One password hash is computed for all accounts (hashing is deliberately slow: 3,000
hashes would take minutes); the accounts are written with ``bulk_create``. Accounts that
already exist (same prefix and number) are kept and get the new password, so the files
written here are always true. The tokens file has one ``email,token`` line per buyer.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User

BATCH_SIZE = 1000


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def buyer_email(*, prefix: str, number: int, domain: str) -> str:
    return f"{prefix}-{number:06d}@{domain}".lower()


class Command(BaseCommand):
    help = "Bulk-create buyer accounts (one shared password hash) and optionally their JWT access tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=_positive, required=True, help="How many buyers.")
        parser.add_argument("--prefix", default="loadtest", help="Addresses are PREFIX-000001@DOMAIN, ...")
        parser.add_argument("--domain", default="example.com")
        parser.add_argument("--start", type=int, default=1, help="First number (default 1).")
        parser.add_argument(
            "--password",
            help="Password of every buyer (default: random; printed or written to --password-file).",
        )
        parser.add_argument("--password-file", type=Path, help="Write the password to this file (mode 600).")
        parser.add_argument("--tokens", type=Path, metavar="FILE", help="Write 'email,token' lines here.")
        parser.add_argument(
            "--token-minutes",
            type=_positive,
            default=120,
            help="Lifetime of the written access tokens (default 120: a rehearsal outlives the usual 5).",
        )
        parser.add_argument("--json", action="store_true", help="Print a JSON summary.")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["prefix"].strip()
        if not prefix or "@" in prefix or "," in prefix:
            raise CommandError("--prefix must be non-empty and contain no '@' or ','")
        password = options["password"] or secrets.token_urlsafe(18)
        count, start, domain = options["count"], options["start"], options["domain"]
        emails = [buyer_email(prefix=prefix, number=n, domain=domain) for n in range(start, start + count)]

        # The one slow step: hash once, share the hash (each row still gets the same salt,
        # which is acceptable for throw-away load-test accounts and only for them).
        password_hash = make_password(password)
        with transaction.atomic():
            existing = set(User.objects.filter(email__in=emails).values_list("email", flat=True))
            if existing:
                User.objects.filter(email__in=existing).update(password=password_hash, is_active=True)
            User.objects.bulk_create(
                [
                    User(email=email, name=f"Buyer {email.split('@')[0]}", password=password_hash)
                    for email in emails
                    if email not in existing
                ],
                batch_size=BATCH_SIZE,
            )
        # Read the ids back: MySQL does not return them from bulk_create.
        ids = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))

        if options["password_file"]:
            path: Path = options["password_file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password + "\n")
            path.chmod(0o600)
        if options["tokens"]:
            self._write_tokens(options["tokens"], emails=emails, ids=ids, minutes=options["token_minutes"])

        summary = {
            "created": len(emails) - len(existing),
            "existing": len(existing),
            "first_email": emails[0],
            "last_email": emails[-1],
            "tokens_file": str(options["tokens"]) if options["tokens"] else None,
            "password_file": str(options["password_file"]) if options["password_file"] else None,
        }
        if options["json"]:
            if not options["password_file"]:
                summary["password"] = password
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary['created']} buyers created, {summary['existing']} already existed "
                f"({emails[0]} … {emails[-1]})."
            )
        )
        if options["password_file"]:
            self.stdout.write(f"Password written to {options['password_file']}.")
        elif not options["password"]:
            self.stdout.write(f"Password of every buyer: {password}")
        if options["tokens"]:
            minutes = options["token_minutes"]
            self.stdout.write(f"Access tokens ({minutes} min) written to {options['tokens']}.")

    @staticmethod
    def _write_tokens(path: Path, *, emails: list[str], ids: dict[str, int], minutes: int) -> None:
        lifetime = timedelta(minutes=minutes)
        lines = []
        for email in emails:
            # for_user() only reads the primary key, so a bare instance saves a query per buyer.
            token = AccessToken.for_user(User(pk=ids[email], email=email))
            token.set_exp(lifetime=lifetime)
            lines.append(f"{email},{token}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
