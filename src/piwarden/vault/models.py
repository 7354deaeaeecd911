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
