from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "piwarden.vault"
    label = "vault"
    verbose_name = "Vault (keys and encryption)"
