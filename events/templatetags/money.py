"""Prices for the active language: ``{% load money %}`` then ``{{ seat.price|won }}``.

The won has no minor unit in use, so amounts show whole won with thousands grouping:
"55,000원" in Korean, "55,000 KRW" in English. Grouping comes from ``floatformat``'s
``g`` flag (the locale's separator) rather than ``USE_THOUSAND_SEPARATOR``, which would
also group ids and seat numbers in data- attributes.
"""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext

register = template.Library()


@register.filter
def won_amount(value: Decimal | int | float | str | None) -> str:
    """The number alone, grouped: "55,000" (for templates that place the unit themselves)."""
    if value is None or value == "":
        return ""
    return str(floatformat(value, "0g"))


@register.filter
def won(value: Decimal | int | float | str | None) -> str:
    """The amount with its unit for the active language."""
    if value is None or value == "":
        return ""
    # Translators: a price in Korean won; Korean puts the unit right after the number: "%(amount)s원".
    return gettext("%(amount)s KRW") % {"amount": won_amount(value)}
