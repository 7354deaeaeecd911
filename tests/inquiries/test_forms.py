"""The request's fields are declared once, on ``Inquiry``: the form, the submission and the labels
follow the model; the page adds the CAPTCHA, autocomplete and "Please choose", the domain does not."""

from __future__ import annotations

import uuid

import pytest
from django import forms
from django.utils import translation

from piwarden.inquiries.forms import ConsultationForm
from piwarden.inquiries.models import FIELD_LABELS, PERSONAL_FIELDS, REQUEST_FIELDS, Inquiry
from piwarden.site.forms import ConsultationPageForm
from piwarden.vault.fields import EncryptedTextField
from tests.conftest import consultation_data


def model_field(name: str) -> object:
    return Inquiry._meta.get_field(name)


def test_the_personal_fields_are_the_encrypted_ones_in_the_models_order():
    encrypted = [f.name for f in Inquiry._meta.concrete_fields if isinstance(f, EncryptedTextField)]
    assert list(PERSONAL_FIELDS) == encrypted
    assert len(PERSONAL_FIELDS) == 7
    assert (*PERSONAL_FIELDS, "product") == REQUEST_FIELDS


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_forms_labels_and_lengths_are_the_models(language):
    with translation.override(language):
        form = ConsultationForm()
        assert list(form.fields)[: len(REQUEST_FIELDS)] == list(REQUEST_FIELDS)
        for name in REQUEST_FIELDS:
            field = model_field(name)
            assert str(form.fields[name].label) == str(field.verbose_name)
            assert str(FIELD_LABELS.get(name, field.verbose_name)) == str(field.verbose_name)
            if isinstance(form.fields[name], forms.CharField):
                assert form.fields[name].max_length == field.plaintext_max_length
        assert str(form.fields["name"].label) == {"zh-hans": "姓名", "en": "Name"}[language]
    assert set(FIELD_LABELS) == set(PERSONAL_FIELDS)


@pytest.mark.django_db
def test_the_submission_is_built_from_the_form():
    token = uuid.uuid4()
    form = ConsultationForm(consultation_data(submission_token=str(token), phone="138 0013 8000"))
    assert form.is_valid(), form.errors
    submission = form.to_submission("en")
    assert set(submission.values) == set(REQUEST_FIELDS)
    assert submission.values["phone"] == "+8613800138000"  # cleaned by the field: E.164
    assert submission.phone == submission.values["phone"]
    assert submission.submission_token == token
    assert submission.language == "en"
    assert submission.consent_text == form.consent_text()


@pytest.mark.django_db
def test_the_domain_form_has_no_page_parts_and_the_page_form_adds_them(settings):
    settings.PIWARDEN_CAPTCHA = "on"
    domain, page = ConsultationForm(), ConsultationPageForm()
    assert "captcha" not in domain.fields
    assert "captcha" in page.fields
    assert "autocomplete" not in domain.fields["email"].widget.attrs
    assert page.fields["email"].widget.attrs["autocomplete"] == "email"
    assert page.fields["name"].widget.attrs["autocomplete"] == "name"
    for name in ("industry", "region", "product"):
        domain_values = [value for value, _label in domain.fields[name].choices]
        page_values = [value for value, _label in page.fields[name].choices]
        assert "" not in domain_values
        assert page_values == ["", *domain_values]
    # The API's form validates without a CAPTCHA; the page's does not.
    body = consultation_data()
    del body["captcha_0"], body["captcha_1"]
    assert ConsultationForm(body).is_valid()
    assert set(ConsultationPageForm(body).errors) == {"captcha"}


def test_a_page_shares_its_choices_between_instances():
    """Built once per language: no per-instance normalisation of ~250 regions."""
    with translation.override("en"):
        first, second = ConsultationPageForm(), ConsultationPageForm()
        assert first.fields["region"].choices is second.fields["region"].choices
        assert ConsultationForm().fields["region"].choices is ConsultationForm().fields["region"].choices
