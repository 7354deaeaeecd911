"""A plain Django form over the consultation fields.

Same fields, same maximum lengths, the phone number checked with ``phonenumbers``
and the choice lists taken from the declaration (industries, products) and ISO 3166
(regions), as the real form does.  No CAPTCHA, no consent box, no submission token.
"""

from typing import Any

import pycountry
from django import forms

from piwarden.policy.declaration import load_declaration
from piwarden.vault.blind import InvalidPhoneNumber, normalise_phone


def _choices(ids: list[str]) -> list[tuple[str, str]]:
    return [("", "---")] + [(i, i) for i in ids]


class BaselineForm(forms.Form):
    name = forms.CharField(max_length=100)
    phone = forms.CharField(max_length=32)
    email = forms.EmailField(max_length=254)
    company = forms.CharField(max_length=200)
    industry = forms.ChoiceField()
    position = forms.CharField(max_length=100)
    region = forms.ChoiceField()
    product = forms.ChoiceField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declaration = load_declaration()
        self.fields["industry"].choices = _choices([i.id for i in declaration.industries])
        self.fields["product"].choices = _choices([p.id for p in declaration.products])
        self.fields["region"].choices = _choices([c.alpha_2 for c in pycountry.countries])

    def clean_phone(self) -> str:
        try:
            return normalise_phone(self.cleaned_data["phone"])  # the real form's check and format
        except InvalidPhoneNumber:
            raise forms.ValidationError("This is not a valid phone number.", code="invalid_phone") from None
