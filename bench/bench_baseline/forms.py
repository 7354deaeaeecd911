"""The lean plain Django form over the consultation fields.

Same fields, same maximum lengths, the phone number checked with ``phonenumbers``
and the choice lists taken from the declaration (industries, products) and ISO 3166
(regions), as the real form does, built once when the module is imported (the issue's "lean"
reference: choices built once, not per request).  No CAPTCHA, no consent box, no submission token.
"""

import pycountry
from django import forms

from piwarden.policy.declaration import load_declaration
from piwarden.vault.blind import InvalidPhoneNumber, normalise_phone


def _choices(ids: list[str]) -> list[tuple[str, str]]:
    return [("", "---")] + [(i, i) for i in ids]


_DECLARATION = load_declaration()
INDUSTRIES = _choices([i.id for i in _DECLARATION.industries])
PRODUCTS = _choices([p.id for p in _DECLARATION.products])
REGIONS = _choices([c.alpha_2 for c in pycountry.countries])


class BaselineForm(forms.Form):
    name = forms.CharField(max_length=100)
    phone = forms.CharField(max_length=32)
    email = forms.EmailField(max_length=254)
    company = forms.CharField(max_length=200)
    industry = forms.ChoiceField(choices=INDUSTRIES)
    position = forms.CharField(max_length=100)
    region = forms.ChoiceField(choices=REGIONS)
    product = forms.ChoiceField(choices=PRODUCTS)

    def clean_phone(self) -> str:
        try:
            return normalise_phone(self.cleaned_data["phone"])  # the real form's check and format
        except InvalidPhoneNumber:
            raise forms.ValidationError("This is not a valid phone number.", code="invalid_phone") from None
