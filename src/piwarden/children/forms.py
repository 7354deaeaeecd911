"""The guardian's answer, checked (the page in ``site.guardian_views``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

CONSENT, REFUSE = "consent", "refuse"


def consent_text(controller: str, purposes: str) -> str:
    """The separate consent's text in the active language: what the guardian ticks, recorded as shown."""
    return _(
        "I am this child's parent or other guardian, and I separately consent to %(controller)s processing "
        "the child's personal information described above, for: %(purposes)s."
    ) % {"controller": controller, "purposes": purposes}


class GuardianDecisionForm(forms.Form):
    """Consent (with the separate-consent box ticked) or refuse: the guardian's two buttons."""

    decision = forms.ChoiceField(
        choices=[(CONSENT, gettext_lazy("I consent")), (REFUSE, gettext_lazy("I refuse"))],
        error_messages={
            "required": gettext_lazy("Choose whether you consent or refuse."),
            "invalid_choice": gettext_lazy("Choose whether you consent or refuse."),
        },
    )
    separate_consent = forms.BooleanField(required=False)

    def __init__(self, *args: Any, consent_label: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["separate_consent"].label = consent_label

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        getlist = getattr(self.data, "getlist", None)
        if getlist is not None and any(len(getlist(name)) > 1 for name in self.fields):
            raise forms.ValidationError(_("Please give only one answer."))
        if cleaned.get("decision") == CONSENT and not cleaned.get("separate_consent"):
            self.add_error(
                "separate_consent",
                _("To consent, tick the box that gives your separate consent. Otherwise choose “I refuse”."),
            )
        return cleaned
