"""The incident register's forms: the validating base the back office's pages use.

They check shape (required fields, lengths, choices, times that cannot be); the write paths
(:mod:`piwarden.incidents.actions`) decide every rule of the state machine again.  Every free-text
field says not to write personal data: the register is about systems, not people.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from piwarden.incidents.models import TEXT_MAX_LENGTH, TITLE_MAX_LENGTH, Grade, Kind
from piwarden.policy.declaration import load_declaration

NO_PERSONAL_DATA = _("About systems and data, not people: write no personal information here.")
MOST_ADDRESSES = 10_000
MIN_JUSTIFICATION = 20


def category_choices() -> list[tuple[str, str]]:
    return [(c.id, str(c.name)) for c in load_declaration().categories]


def _text(label: Any, *, required: bool = True, rows: int = 3) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": rows}),
        help_text=NO_PERSONAL_DATA,
    )


class IncidentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=TITLE_MAX_LENGTH, help_text=NO_PERSONAL_DATA)
    kind = forms.ChoiceField(label=_("Kind"), choices=Kind.choices)
    grade = forms.ChoiceField(
        label=_("Grade"),
        choices=Grade.choices,
        help_text=_("Relatively major (较大) and above must be reported to the regulator within 4 hours."),
    )
    cii = forms.BooleanField(
        label=_("Critical information infrastructure is involved (report within 1 hour)"), required=False
    )
    detected_at = forms.DateTimeField(
        label=_("Detected at (China Standard Time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    categories = forms.MultipleChoiceField(
        label=_("Data categories affected"), widget=forms.CheckboxSelectMultiple, required=False
    )
    affected_persons = forms.IntegerField(label=_("Number of persons affected"), min_value=0, max_value=2_000_000_000)
    minors_affected = forms.IntegerField(label=_("Of whom minors"), min_value=0, max_value=2_000_000_000)
    cause = _text(_("Cause (as far as known)"))
    measures = _text(_("Measures taken"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = self.fields["categories"]
        assert isinstance(categories, forms.MultipleChoiceField)  # noqa: S101  # declared above
        categories.choices = category_choices()

    def clean_detected_at(self) -> Any:
        detected = self.cleaned_data["detected_at"]
        if detected > timezone.now() + datetime.timedelta(minutes=5):
            raise ValidationError(_("The detection time is in the future: give the time the incident was detected."))
        return detected

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        persons, minors = cleaned.get("affected_persons"), cleaned.get("minors_affected")
        if persons is not None and minors is not None and minors > persons:
            self.add_error("minors_affected", _("There cannot be more minors than persons affected."))
        return cleaned


class ReportForm(forms.Form):
    """The report to the regulator, with the contents the reporting measures ask for (SEC-06):
    the unit, the time, place and type of the incident (from the register), its impact, the
    measures taken and their effect, the trend, an initial analysis of the cause, leads for tracing
    it, further measures, support requested and the preservation of the scene."""

    authority = forms.CharField(
        label=_("Reported to"),
        max_length=200,
        help_text=_(
            "The authority: the provincial cyberspace administration, or for CII the protection department "
            "and the police."
        ),
    )
    place = forms.CharField(label=_("Place (systems, sites)"), max_length=500, help_text=NO_PERSONAL_DATA)
    impact = _text(_("Impact and harm"))
    measures_effect = _text(_("Measures taken and their effect"))
    trend = _text(_("Likely development"))
    cause_analysis = _text(_("Initial analysis of the cause"))
    tracing = _text(_("Leads for tracing the source"), required=False)
    further_measures = _text(_("Further measures planned"))
    support = _text(_("Support requested"), required=False)
    preservation = _text(_("Preservation of the scene and evidence"))
    authority_requires_notice = forms.BooleanField(
        label=_("The authority requires the persons affected to be notified"), required=False
    )

    REPORT_FIELDS = (
        "authority",
        "place",
        "impact",
        "measures_effect",
        "trend",
        "cause_analysis",
        "tracing",
        "further_measures",
        "support",
        "preservation",
    )


NOTICE_PARTS = ("cause", "harm", "remedies", "advice")


class NoticeForm(forms.Form):
    """The notice to the persons affected, PIPL Art 57: the categories (from the register), the
    cause and the possible harm, the remedial measures and what the person can do, and the contact
    (from the declaration); each text in Chinese and in English."""

    cause_zh = _text(_("Cause (Chinese)"))
    cause_en = _text(_("Cause (English)"))
    harm_zh = _text(_("Possible harm (Chinese)"))
    harm_en = _text(_("Possible harm (English)"))
    remedies_zh = _text(_("Remedial measures taken (Chinese)"))
    remedies_en = _text(_("Remedial measures taken (English)"))
    advice_zh = _text(_("What the person can do to reduce the harm (Chinese)"))
    advice_en = _text(_("What the person can do to reduce the harm (English)"))

    def texts(self) -> dict[str, dict[str, str]]:
        data = self.cleaned_data
        return {
            part: {"zh-hans": data[f"{part}_zh"].strip(), "en": data[f"{part}_en"].strip()} for part in NOTICE_PARTS
        }

    @classmethod
    def initial_from(cls, notice: dict[str, dict[str, str]]) -> dict[str, str]:
        initial: dict[str, str] = {}
        for part in NOTICE_PARTS:
            texts = notice.get(part, {})
            initial[f"{part}_zh"] = texts.get("zh-hans", "")
            initial[f"{part}_en"] = texts.get("en", "")
        return initial


class AudienceForm(forms.Form):
    """Whom to notify: everyone the affected categories hold, and/or a list of addresses."""

    by_categories = forms.BooleanField(
        label=_("Everyone whose data of the affected categories we hold"), required=False
    )
    addresses = forms.CharField(
        label=_("And these e-mail addresses (one a line)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Only addresses of persons whose data we hold: an unknown address is refused, and nothing is stored for it."
        ),
    )

    def clean_addresses(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["addresses"].splitlines() if line.strip()]
        if len(lines) > MOST_ADDRESSES:
            raise ValidationError(_("At most %(most)s addresses at once.") % {"most": MOST_ADDRESSES})
        bad = []
        for number, line in enumerate(lines, start=1):
            try:
                validate_email(line)
            except ValidationError:
                bad.append(str(number))
        if bad:
            raise ValidationError(_("Not an e-mail address, on line(s): %(lines)s.") % {"lines": ", ".join(bad[:20])})
        return lines

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("by_categories") and not cleaned.get("addresses") and not self.errors:
            raise ValidationError(_("Choose whom to notify: the affected categories, a list of addresses, or both."))
        return cleaned


class JustificationForm(forms.Form):
    """Why the persons affected are not notified (PIPL 57 para 2: the measures avoid the harm)."""

    justification = forms.CharField(
        label=_("Why the measures taken effectively avoid harm to the persons affected"),
        min_length=MIN_JUSTIFICATION,
        max_length=TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=NO_PERSONAL_DATA,
    )
