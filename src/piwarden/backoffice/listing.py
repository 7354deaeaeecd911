"""The console's switched lists: the rows an access function gives the staff member (it checks the
role and records the opening), narrowed by one yes/no switch of the query (``?awaiting=1``), a page
at a time.  The refusals and the alerts are such lists; each names its access function, switch,
page size and template, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.generic import ListView

from piwarden.backoffice.decorators import staff_required
from piwarden.staff.permissions import staff_role


def query_without_page(request: HttpRequest) -> str:
    """The list's query string (its filter or switch), for the pager's links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


class SwitchedList[M: Model](ListView[M]):
    switch: str  # the query's parameter that narrows the list when it is "1"
    http_method_names = ["get"]  # as require_GET: nothing else reaches the access function

    def rows(self, user: AbstractBaseUser | AnonymousUser, switched: bool) -> QuerySet[M]:
        raise NotImplementedError

    def switched(self) -> bool:
        return self.request.GET.get(self.switch) == "1"

    def get_queryset(self) -> QuerySet[M]:
        return self.rows(self.request.user, self.switched())

    def paginate_queryset(self, queryset: Any, page_size: int) -> tuple[Paginator[Any], Page[Any], Any, bool]:
        # A page number past the end, or not a number, shows the nearest page (Paginator.get_page),
        # not ListView's 404.
        page = Paginator(queryset, page_size).get_page(self.request.GET.get(self.page_kwarg))
        return page.paginator, page, page.object_list, page.has_other_pages()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            role=staff_role(self.request.user),
            page=context["page_obj"],
            switched=self.switched(),
            query=query_without_page(self.request),
        )
        return context


def staff_list(list_class: type[SwitchedList[Any]]) -> Callable[..., HttpResponse]:
    """The list as a console view: signed-in staff only, never cached (``staff_required``)."""
    # ListView answers a TemplateResponse, an HttpResponse (the stubs type as_view() more widely).
    return staff_required(cast("Callable[..., HttpResponse]", list_class.as_view()))
