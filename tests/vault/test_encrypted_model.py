"""Every model with encrypted fields extends ``EncryptedModel`` and chooses its key before the INSERT."""

from __future__ import annotations

from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from piwarden.inquiries.models import Inquiry
from piwarden.staff.models import Authenticator
from piwarden.vault.fields import EncryptedTextField
from piwarden.vault.models import EncryptedModel, PersonalData


def errors_of(model: type[models.Model]) -> list[str]:
    return [error.id for error in model.check() if error.id and error.id.startswith("vault.")]


def test_every_installed_model_with_an_encrypted_field_extends_the_base():
    holders = [
        model
        for model in apps.get_models()
        if any(isinstance(f, EncryptedTextField) for f in model._meta.concrete_fields)
    ]
    assert Inquiry in holders
    assert Authenticator in holders
    for model in holders:
        assert issubclass(model, EncryptedModel), model
        assert errors_of(model) == [], model
    assert issubclass(Inquiry, PersonalData)


@isolate_apps("piwarden.vault")
def test_a_model_with_an_encrypted_field_and_no_base_is_refused():
    class Loose(models.Model):  # noqa: DJ008  # a model made only to be refused
        secret = EncryptedTextField()

        class Meta:
            app_label = "vault"

    assert errors_of(Loose) == ["vault.E003"]


@isolate_apps("piwarden.vault")
def test_a_model_whose_key_is_chosen_by_the_database_is_refused():
    class Counted(EncryptedModel):  # a model made only to be refused
        secret = EncryptedTextField()

        class Meta:
            app_label = "vault"

    assert errors_of(Counted) == ["vault.E004"]
