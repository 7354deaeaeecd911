"""What the signed-in staff member may do, for the console's templates (``{% if may.read_audit %}``)."""

from __future__ import annotations

from django.http import HttpRequest

from piwarden.staff.permissions import StaffPermissions


def staff_permissions(request: HttpRequest) -> dict[str, StaffPermissions]:
    # Lazy: nothing is read (not even the session: a public page must not vary by cookie) unless
    # a template looks.
    return {"may": StaffPermissions(request)}
