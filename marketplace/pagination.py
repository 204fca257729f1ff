from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        # DRF answers a bad `page` (0, text, past the last page) with 404, which reads as "no
        # such endpoint": it is a bad query parameter, so 400 naming it.
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound as error:
            raise exceptions.ValidationError({self.page_query_param: [str(error.detail)]}) from None
