"""Consultation requests (policy §一(I)1.1).

The request's fields are declared here once: the personal ones, encrypted under the person's
data key, and ``product`` (what the request is about), which is not personal and stays readable
so that the inbox can be sorted and counted without decrypting anything.  Their ``verbose_name``
is the label the form, the staff console and the audit log show; the form and the submission
are built from them (``inquiries.forms``), so a new field is this model, its migration, its
declaration in ``policy/declaration.toml`` and the translation of its label.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from piwarden.policy.declaration import load_declaration
from piwarden.vault.fields import EncryptedTextField
from piwarden.vault.models import PersonalData

# No 0/O or 1/I: read aloud on the phone.  32 characters: each is 5 bits of one random byte (256 is
# a multiple of 32, so every character is equally likely).
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_reference() -> str:
    """Ten random characters: one read of the system's randomness (``secrets.choice`` made ten)."""
    return "".join(_REFERENCE_ALPHABET[byte % 32] for byte in secrets.token_bytes(10))


class InquiryStatus(models.TextChoices):
    NEW = "new", _("New")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class Inquiry(PersonalData):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reference = models.CharField(max_length=10, unique=True, default=new_reference, editable=False)
    submission_token = models.UUIDField(unique=True, help_text="From the form; a replayed form creates nothing.")

    name = EncryptedTextField(_("Name"), max_length=100)
    phone = EncryptedTextField(_("Contact number"), max_length=32)
    email = EncryptedTextField(_("E-mail"), max_length=254)
    company = EncryptedTextField(_("Company"), max_length=200)
    industry = EncryptedTextField(_("Industry"), max_length=40)
    position = EncryptedTextField(_("Position"), max_length=100)
    region = EncryptedTextField(_("Country / region"), max_length=2)

    product = models.CharField(_("Product or service of interest"), max_length=40)
    # The age statement the visitor ticked (policy §八), exactly as shown: the basis on which a
    # request is taken as not a child's, or a child's with a guardian's consent.
    age_statement = models.CharField(max_length=300, blank=True, default="")
    language = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=InquiryStatus.choices, default=InquiryStatus.NEW)
    submitted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    sales_notified_at = models.DateTimeField(null=True, blank=True)
    # The staff member answering it: sales see only the requests assigned to them.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

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


# The personal fields of a request (the encrypted ones), in the model's order.
PERSONAL_FIELDS = tuple(f.name for f in Inquiry._meta.concrete_fields if isinstance(f, EncryptedTextField))
# Each personal field's label (lazy, translated where shown): the staff console's and the page's.
FIELD_LABELS = {f.name: f.verbose_name for f in Inquiry._meta.concrete_fields if f.name in PERSONAL_FIELDS}
# What the visitor fills in: the personal fields and the product asked about.
REQUEST_FIELDS = (*PERSONAL_FIELDS, "product")
# The declared data category of the personal fields (policy/declaration.toml), as the gate is asked about it.
CATEGORY = "consultation"
