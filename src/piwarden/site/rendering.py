"""The form renderer: Django's ``<input>`` widgets written in Python, everything else by its template.

Django renders every widget through the template engine: an ``<input>`` is three templates
(``text.html`` includes ``input.html``, which includes ``attrs.html``), about 60 µs each on this
machine, so the consultation form's ten inputs cost more than a whole page's own template.  The
markup of those templates is a single line, written here once, character for character (a test
renders every input widget both ways and compares).

An app or the project that overrides one of these templates keeps its override: a template is
replaced only while the engine finds it in Django's own ``forms/templates`` directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import django.forms
from django.forms.renderers import DjangoTemplates
from django.template import TemplateDoesNotExist
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

_DJANGO_FORMS_TEMPLATES = Path(django.forms.__file__).resolve().parent / "templates"
_INPUT = "django/forms/widgets/input.html"
_ATTRS = "django/forms/widgets/attrs.html"
# Django's widget templates that are nothing but ``{% include "django/forms/widgets/input.html" %}``.
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{kind}.html"
    for kind in (
        "input",
        "text",
        "email",
        "hidden",
        "checkbox",
        "number",
        "password",
        "url",
        "tel",
        "search",
        "date",
        "datetime",
        "time",
        "color",
        "file",
    )
)


def _text(value: Any) -> str:
    """``{{ value|stringformat:'s' }}`` under autoescape: text escaped unless already marked safe."""
    return str(conditional_escape("%s" % (value,)))  # noqa: UP031  # the filter's own formatting


def input_html(widget: dict[str, Any]) -> SafeString:
    """What ``django/forms/widgets/input.html`` renders for a widget's context, stripped as the renderer strips it."""
    parts = [
        '<input type="',
        str(conditional_escape(widget["type"])),
        '" name="',
        str(conditional_escape(widget["name"])),
        '"',
    ]
    value = widget["value"]
    if value is not None:
        parts += [' value="', _text(value), '"']
    for name, attribute in widget["attrs"].items():
        if attribute is False:
            continue
        parts += [" ", str(conditional_escape(name))]
        if attribute is not True:
            parts += ['="', _text(attribute), '"']
    parts.append(">")
    return mark_safe("".join(parts))  # noqa: S308  # every value above went through conditional_escape


class FormRenderer(DjangoTemplates):
    """Django's default form renderer, with its plain ``<input>`` templates rendered in Python."""

    def __init__(self) -> None:
        super().__init__()
        self._native: dict[str, bool] = {}

    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        if template_name in INPUT_TEMPLATES and self._is_djangos(template_name):
            return input_html(context["widget"])
        return str(super().render(template_name, context, request))

    def _is_djangos(self, template_name: str) -> bool:
        """Whether the engine would load Django's own file for this template and for input/attrs.html."""
        known = self._native.get(template_name)
        if known is None:
            known = all(self._origin_is_djangos(name) for name in {template_name, _INPUT, _ATTRS})
            self._native[template_name] = known
        return known

    def _origin_is_djangos(self, template_name: str) -> bool:
        try:
            origin = self.get_template(template_name).origin.name
        except TemplateDoesNotExist:
            return False
        return Path(str(origin)).resolve().is_relative_to(_DJANGO_FORMS_TEMPLATES)
