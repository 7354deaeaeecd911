from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "piwarden.vault"
    label = "vault"
    verbose_name = "Vault (keys and encryption)"

    def ready(self) -> None:
        from piwarden.vault import checks  # noqa: F401, PLC0415  # registers the deploy checks; imports models
