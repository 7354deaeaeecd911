from __future__ import annotations

from django.db import models
from uuid6 import uuid7


class DataKey(models.Model):
    """One person's data key, wrapped by the key-encryption key.

    ``wrapped`` is a Tink keyset encrypted under the KEK with this row's id as
    associated data, so a wrapped key copied onto another row does not open.
    Destroying it (``destroyed_at`` set, ``wrapped`` emptied) crypto-shreds
    everything encrypted under it.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    wrapped = models.BinaryField()
    kek_key_id = models.BigIntegerField(help_text="Id of the KEK key that wrapped this key (for rotation progress).")
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kek_key_id"], name="vault_datakey_kek_idx")]

    def __str__(self) -> str:
        return f"DataKey {self.id}"

    @property
    def is_destroyed(self) -> bool:
        return self.destroyed_at is not None


class KeyCheck(models.Model):
    """Which keys this database was written with: one row, cheap to verify at start-up.

    ``sealed`` is a fixed canary encrypted under the key-encryption key, and
    ``blind_digest`` is the blind index of a fixed canary.  A process that can
    open the one and recompute the other holds the same KEK and the same
    blind-index key as the processes that wrote the data; see
    :mod:`piwarden.vault.keycheck`.  Neither reveals anything about a key.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    sealed = models.BinaryField()
    kek_key_id = models.BigIntegerField(help_text="Id of the KEK key that sealed the canary (re-sealed on rotation).")
    blind_digest = models.CharField(max_length=64)
    recorded_at = models.DateTimeField()
    written_off_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set by a forced key replacement: data keys created before it were written off by the operator.",
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="vault_keycheck_singleton")]

    def __str__(self) -> str:
        return f"KeyCheck (KEK key {self.kek_key_id})"


class EncryptedModel(models.Model):
    """The contract of every model with :class:`~piwarden.vault.fields.EncryptedTextField` fields.

    Each encrypted field of a row is sealed under ``data_key``, with associated data that names
    the row's primary key; so the key must be chosen before the INSERT (a default, such as
    ``uuid7``), which ``EncryptedTextField``'s system check demands along with this base.  A
    model whose rows belong to a person extends :class:`PersonalData` instead.
    """

    data_key = models.ForeignKey(DataKey, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class PersonalData(EncryptedModel):
    """A person's encrypted data: sealed under that person's data key, and linked to the person.

    The link is how export and erasure find every row of a person; ``data_key`` is the person's
    own, so destroying it (crypto-shredding) makes every such row unreadable at once.  The reverse
    accessor is the app's label (``person.inquiries``); a second model of the same app overrides
    ``person`` with a name of its own (Django's checks report the clash until it does).
    """

    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="%(app_label)s")

    class Meta:
        abstract = True
