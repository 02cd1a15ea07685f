"""Template context for every page: the notice of a waiting-list offer out to the buyer."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from booking.waiting_list_views import offer_notice_for_user


def waiting_list_offer(request: HttpRequest) -> dict[str, Any]:
    """``waiting_list_offer``: the signed-in buyer's live offer (``OfferNotice``) or None,
    for the banner of ``base.html``. Lazy: the one query runs only when a template reads
    it (pages that don't extend ``base.html``, like the admin, pay nothing), and never for
    a visitor who is not signed in. JSON answers render no template, so the API's hot
    paths never run this."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    user_id = user.pk
    return {"waiting_list_offer": SimpleLazyObject(lambda: offer_notice_for_user(user_id))}
