from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = None

    def page_number_of(self, request: Request) -> int:
        try:
            return max(1, int(request.query_params.get(self.page_query_param, 1)))
        except ValueError:
            return 1

    def get_paginated_data(self, results: Any) -> dict[str, Any]:
        return {
            "count": self.page.paginator.count,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": results,
        }
