"""The downloads library (white papers, datasheets) and the two histories a signed-in visitor may keep.

:class:`Resource` is what staff publish: titles and descriptions in both languages, and a file in
the data directory under a random name (``files.py``), of a type on the allow-list (``kinds.py``).
Nothing in it is about a visitor.

:class:`DownloadRecord` and :class:`PageView` are per person, and exist only for a signed-in
person who allowed the cookie category the policy puts them under (functional for downloads,
analytics for page views; ``piwarden.consent.cookies.allows``).  Each row is a link to the person
(an opaque id), a resource or one of our own public paths, and a time: nothing the person typed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from uuid6 import uuid7


class Resource(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    title_zh = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200)
    description_zh = models.TextField(max_length=2000, blank=True)
    description_en = models.TextField(max_length=2000, blank=True)
    # The name the file is offered under (cleaned: no directory, no control characters).
    filename = models.CharField(max_length=150)
    kind = models.CharField(max_length=10)  # an id of kinds.KINDS: decides the Content-Type
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    stored_name = models.CharField(max_length=32, unique=True)  # files.py: 32 hex digits, never from input
    published_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.title_en

    @property
    def title(self) -> str:
        return self.title_en if (get_language() or "").startswith("en") else self.title_zh

    @property
    def description(self) -> str:
        return self.description_en if (get_language() or "").startswith("en") else self.description_zh

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None


class DownloadRecord(models.Model):
    """One download by a signed-in person who allowed functional cookies (download history)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="+")
    downloaded_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["person", "downloaded_at"], name="downloads_record_person_idx")]

    def __str__(self) -> str:
        return f"download of {self.resource_id} at {self.downloaded_at:%Y-%m-%d %H:%M}"


class PageView(models.Model):
    """One page of ours viewed by a signed-in person who allowed analytics (browsing history).

    Written in bulk (``browsing.py``), so the key is the database's own counter.
    """

    id = models.BigAutoField(primary_key=True)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=200)  # request.path of a public page: no query string
    viewed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["person", "viewed_at"], name="downloads_pageview_person_idx")]

    def __str__(self) -> str:
        return f"{self.path} at {self.viewed_at:%Y-%m-%d %H:%M}"
