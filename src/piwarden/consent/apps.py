from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "piwarden.consent"
    label = "consent"
    verbose_name = "Consent ledger"
