from django.apps import AppConfig

from piwarden.policy.stores import FileStore


class VaultConfig(AppConfig):
    name = "piwarden.vault"
    label = "vault"
    verbose_name = "Vault (keys and encryption)"

    # Files written outside the database, declared in policy/declaration.toml as "vault:<name>".
    file_stores = (
        FileStore("outbox", "PIWARDEN_OUTBOX_DIR/*.eml.sealed (PIWARDEN_EMAIL=file)", sealed=True),
        FileStore("keys", "PIWARDEN_KEYS (file: provider): the key-encryption and blind-index keysets", sealed=False),
        # settings.py writes it, for a one-machine install; it is a key, so the vault declares it.
        FileStore("secret_key", "PIWARDEN_DATA_DIR/secret_key, unless SECRET_KEY(_FILE) is set", sealed=False),
    )

    def ready(self) -> None:
        from piwarden.vault import checks  # noqa: F401, PLC0415  # registers the deploy checks; imports models
