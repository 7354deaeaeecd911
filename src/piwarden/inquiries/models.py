"""Consultation requests (policy §一(I)1.1).

The seven fields the policy names are encrypted under the person's data key;
``product`` (what the request is about) is not personal and stays readable so
that the inbox can be sorted and counted without decrypting anything.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from piwarden.policy.declaration import load_declaration
from piwarden.vault.fields import EncryptedTextField

PERSONAL_FIELDS = ("name", "phone", "email", "company", "industry", "position", "region")
# The declared data category of those fields (policy/declaration.toml), as the gate is asked about it.
CATEGORY = "consultation"


def new_reference() -> str:
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: read aloud on the phone
    return "".join(secrets.choice(alphabet) for _ in range(10))


class InquiryStatus(models.TextChoices):
    NEW = "new", _("New")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class Inquiry(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reference = models.CharField(max_length=10, unique=True, default=new_reference, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="inquiries")
    data_key = models.ForeignKey("vault.DataKey", on_delete=models.PROTECT, related_name="+")
    submission_token = models.UUIDField(unique=True, help_text="From the form; a replayed form creates nothing.")

    name = EncryptedTextField(max_length=100)
    phone = EncryptedTextField(max_length=32)
    email = EncryptedTextField(max_length=254)
    company = EncryptedTextField(max_length=200)
    industry = EncryptedTextField(max_length=40)
    position = EncryptedTextField(max_length=100)
    region = EncryptedTextField(max_length=2)

    product = models.CharField(max_length=40)
    language = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=InquiryStatus.choices, default=InquiryStatus.NEW)
    submitted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    sales_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        verbose_name_plural = "inquiries"

    def __str__(self) -> str:
        return f"Inquiry {self.reference}"

    @property
    def product_name(self) -> str:
        """The product's declared name in the active language (the id if no longer declared)."""
        for product in load_declaration().products:
            if product.id == self.product:
                return str(product.name)
        return self.product
