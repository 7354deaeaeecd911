"""POST → validate → insert one row → redirect.  CSRF-protected like every Django view."""

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from bench_baseline.forms import BaselineForm
from bench_baseline.models import BaselineInquiry


@require_POST
def submit(request: HttpRequest) -> HttpResponse:
    form = BaselineForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    row = BaselineInquiry.objects.create(**form.cleaned_data)
    return redirect(reverse("bench_baseline:received") + f"?id={row.pk}")


@require_GET
def received(request: HttpRequest) -> HttpResponse:
    return HttpResponse("received\n", content_type="text/plain")


@require_GET
def page(request: HttpRequest) -> HttpResponse:
    """The reference for the GET arms: one ~3 KB template (no includes, no inheritance) through render()."""
    return render(request, "bench_baseline/page.html", {"title": "Network security", "company": "Example Ltd"})
