"""The form renderer writes Django's <input> templates in Python: the same markup, character for character."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from piwarden.site.rendering import INPUT_TEMPLATES, FormRenderer

WIDGETS = [
    forms.TextInput(),
    forms.EmailInput(attrs={"autocomplete": "email", "placeholder": gettext_lazy("E-mail")}),
    forms.HiddenInput(),
    forms.CheckboxInput(),
    forms.NumberInput(attrs={"min": 0, "max": 10, "step": 0.5}),
    forms.PasswordInput(render_value=True),
    forms.URLInput(attrs={"disabled": True, "readonly": False}),
    forms.TelInput(attrs={"data-x": '"><script>alert(1)</script>'}),
    forms.SearchInput(),
    forms.DateInput(),
    forms.DateTimeInput(),
    forms.TimeInput(),
    forms.ColorInput(),
    forms.FileInput(),
]
VALUES: list[Any] = [
    None,
    "",
    "plain",
    'a "quoted" <b>value</b> & more',
    mark_safe("<i>already safe</i>"),  # a test value: the markup must pass as Django's would
    42,
    True,
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
]


@pytest.mark.parametrize("widget", WIDGETS, ids=lambda w: type(w).__name__)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_input_widget_renders_as_djangos_template_does(widget: forms.Widget, value: Any) -> None:
    assert widget.template_name in INPUT_TEMPLATES
    attrs = {"id": "id_field", "required": True, "maxlength": 100, "aria-describedby": "id_field_helptext"}
    expected = widget.render("field", value, attrs=attrs, renderer=DjangoTemplates())
    assert widget.render("field", value, attrs=attrs, renderer=FormRenderer()) == expected


def test_it_is_the_sites_form_renderer() -> None:
    assert isinstance(get_default_renderer(), FormRenderer)


def test_other_widgets_still_render_through_their_templates() -> None:
    widget = forms.Select(choices=[("a", "A"), ("b", "<B>")])
    expected = widget.render("pick", "b", renderer=DjangoTemplates())
    assert widget.render("pick", "b", renderer=FormRenderer()) == expected
    assert "<option" in expected


def test_an_overridden_input_template_keeps_its_override(settings: Any, tmp_path: Any) -> None:
    """A project that overrides Django's input.html gets its own markup, not the renderer's copy."""
    override = tmp_path / "django" / "forms" / "widgets"
    override.mkdir(parents=True)
    (override / "input.html").write_text('<input class="custom" name="{{ widget.name }}">')

    class Overridden(FormRenderer):
        @property
        def engine(self) -> Any:
            djangos = Path(forms.__file__).parent / "templates"
            return self.backend({"APP_DIRS": False, "DIRS": [tmp_path, djangos], "NAME": "overridden", "OPTIONS": {}})

    assert forms.TextInput().render("field", "x", renderer=Overridden()) == '<input class="custom" name="field">'
