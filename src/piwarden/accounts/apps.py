from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "piwarden.accounts"
    label = "accounts"
    verbose_name = "Visitor accounts"
