"""The downloads library's input: what staff write about a resource, and the file they upload.

The file is accepted only if its content is of an allowed type and its name agrees (``kinds.py``),
and it is no larger than ``PIWARDEN_DOWNLOAD_MAX_BYTES``.  Its name is cleaned into the name it is
offered under: no directory, no control character, at most 150 characters.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from piwarden.downloads.actions import ResourceText
from piwarden.downloads.kinds import Kind, extensions, recognise

MAX_FILENAME = 150
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]')


def clean_filename(name: str) -> str:
    """The last part of ``name`` (either slash), without control or reserved characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".")
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        name = stem[: MAX_FILENAME - len(ext) - 1] + dot + ext if dot and len(ext) <= 5 else name[:MAX_FILENAME]  # noqa: PLR2004
    return name


class ResourceTextForm(forms.Form):
    title_zh = forms.CharField(label=_("Title (Chinese)"), max_length=200)
    title_en = forms.CharField(label=_("Title (English)"), max_length=200)
    description_zh = forms.CharField(
        label=_("Description (Chinese)"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    description_en = forms.CharField(
        label=_("Description (English)"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def text(self) -> ResourceText:
        data = self.cleaned_data
        return ResourceText(data["title_zh"], data["title_en"], data["description_zh"], data["description_en"])


class ResourceForm(ResourceTextForm):
    file = forms.FileField(label=_("File"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _("Allowed: %(types)s; at most %(size)s.") % {
            "types": ", ".join(extensions()),
            "size": filesizeformat(settings.PIWARDEN_DOWNLOAD_MAX_BYTES),
        }
        self.kind: Kind | None = None
        self.filename = ""

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > settings.PIWARDEN_DOWNLOAD_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s; the largest allowed is %(limit)s. Upload a smaller file."),
                code="too_large",
                params={
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(settings.PIWARDEN_DOWNLOAD_MAX_BYTES),
                },
            )
        filename = clean_filename(upload.name or "")
        if not filename:
            raise forms.ValidationError(_("The file has no usable name. Rename it and upload it again."), code="name")
        kind = recognise(upload, filename)
        if kind is None:
            raise forms.ValidationError(
                _(
                    "This file's type is not allowed, or its content does not match its name. Allowed: %(types)s "
                    "(checked by the file's content, not only its name)."
                ),
                code="type",
                params={"types": ", ".join(extensions())},
            )
        self.kind, self.filename = kind, filename
        return upload
