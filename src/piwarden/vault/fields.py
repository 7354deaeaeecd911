"""Model field types that keep personal data encrypted at rest.

``EncryptedTextField`` stores a Tink AEAD ciphertext; the model attribute
reads and writes plaintext.  The model extends
:class:`~piwarden.vault.models.EncryptedModel` (its ``data_key`` is the owner's
data key) and has a client-generated primary key, because the associated data
names the row: ``<table>|<pk>|<column>``.  The field's system check refuses a
model that does not.

Why a descriptor and not ``from_db_value``: ``from_db_value`` does not see the
row, so it can neither pick the owner's key nor build associated data.  The
ciphertext stays in ``instance.__dict__[attname]`` (so Django's deferred-field
bookkeeping keeps working); plaintext is decrypted on first access and
encrypted in ``pre_save``, the one hook that sees the whole instance.

Reading a crypto-shredded row gives ``None``: the value no longer exists.
"""

from __future__ import annotations

from typing import Any, cast

from django.core import checks
from django.db import models

from piwarden.vault import crypto
from piwarden.vault.models import EncryptedModel

_PENDING = object()  # plaintext assigned, not encrypted yet
_PLAIN_PREFIX = "_vault_plain_"


def associated_data(instance: models.Model, field: models.Field[Any, Any]) -> bytes:
    return f"{instance._meta.db_table}|{instance.pk}|{field.column}".encode()


def open_value(
    field: models.Field[Any, Any], pk: Any, data_key_id: Any, stored: bytes | memoryview | None
) -> str | None:
    """A stored value read without its model instance (a row of ``piwarden.prepared.PreparedSelect``),
    decrypted exactly as the model's attribute decrypts it: ``pk`` is the row's primary key,
    ``data_key_id`` the row's ``data_key_id``.  ``None`` for a crypto-shredded value."""
    if stored is None:
        return None
    try:
        return crypto.decrypt(data_key_id, bytes(stored), f"{field.model._meta.db_table}|{pk}|{field.column}".encode())
    except crypto.DataKeyDestroyed:
        return None


def encrypted_field(model: type[models.Model], name: str) -> EncryptedTextField:
    """``model``'s encrypted field ``name``, for :func:`open_value`."""
    found = model._meta.get_field(name)
    if not isinstance(found, EncryptedTextField):
        raise TypeError(f"{model._meta.label}.{name} is not an encrypted field")
    return found


class _EncryptedAttribute:
    def __init__(self, field: EncryptedTextField) -> None:
        self.field = field
        self.attname = field.attname
        self.plain_key = _PLAIN_PREFIX + field.attname

    def __get__(self, instance: EncryptedModel | None, owner: type[EncryptedModel]) -> Any:
        if instance is None:
            return self
        state = instance.__dict__
        if self.attname not in state:
            instance.refresh_from_db(fields=[self.attname])
        if self.plain_key in state:
            return state[self.plain_key]
        ciphertext = state[self.attname]
        if ciphertext is None:
            return None
        plain = open_value(self.field, instance.pk, instance.data_key_id, ciphertext)
        state[self.plain_key] = plain
        return plain

    def __set__(self, instance: models.Model, value: Any) -> None:
        state = instance.__dict__
        if isinstance(value, bytes | memoryview):
            # Loaded from the database: keep the ciphertext, decrypt on demand.
            state[self.attname] = bytes(value)
            state.pop(self.plain_key, None)
        elif value is None:
            state[self.attname] = None
            state[self.plain_key] = None
        elif isinstance(value, str):
            state[self.attname] = _PENDING
            state[self.plain_key] = value
        else:
            raise TypeError(f"{self.field.model.__name__}.{self.attname} takes text, not {type(value).__name__}")


class EncryptedTextField(models.BinaryField):  # type: ignore[type-arg]  # django-stubs generics on BinaryField
    """Text encrypted with the owner's data key; see the module docstring."""

    description = "Text encrypted at rest with the owner's data key"

    def __init__(self, *args: Any, max_length: int | None = None, **kwargs: Any) -> None:
        # max_length limits the plaintext (validated by forms), not the column.
        self.plaintext_max_length = max_length
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.plaintext_max_length is not None:
            kwargs["max_length"] = self.plaintext_max_length
        return name, path, args, kwargs

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only)
        setattr(cls, self.attname, _EncryptedAttribute(self))

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        model = self.model
        if not issubclass(model, EncryptedModel):
            errors.append(
                checks.Error(
                    f"{model._meta.label} has an encrypted field but does not extend vault.models.EncryptedModel.",
                    hint="Extend PersonalData (a person's data) or EncryptedModel: they hold the data-key link.",
                    obj=self,
                    id="vault.E003",
                )
            )
        elif not model._meta.pk or not model._meta.pk.has_default():
            errors.append(
                checks.Error(
                    f"{model._meta.label} has an encrypted field but its primary key has no default.",
                    hint="The ciphertext's associated data names the row: its key must be known before the INSERT.",
                    obj=self,
                    id="vault.E004",
                )
            )
        return errors

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        state = model_instance.__dict__
        ciphertext = state.get(self.attname)
        if ciphertext is _PENDING:
            plain = state[_PLAIN_PREFIX + self.attname]
            ciphertext = crypto.encrypt(
                cast(EncryptedModel, model_instance).data_key_id,  # the check above makes it one
                plain,
                associated_data(model_instance, self),
            )
            state[self.attname] = ciphertext
        return ciphertext


class BlindIndexField(models.CharField):  # type: ignore[type-arg]  # django-stubs generics on CharField
    """Hex HMAC digest of a normalised identifier (``vault.blind``)."""

    description = "Blind index (keyed digest) of a personal identifier"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        # Field.deconstruct() leaves out values equal to *Field's* defaults, but __init__ above
        # has other defaults: without this, a field declared null=False would come back from its
        # migration as null=True.
        name, path, args, kwargs = super().deconstruct()
        if not self.null:
            kwargs["null"] = False
        if not self.blank:
            kwargs["blank"] = False
        if self.editable:
            kwargs["editable"] = True
        return name, path, args, kwargs
