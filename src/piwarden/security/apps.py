from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "piwarden.security"
    label = "security"
    verbose_name = "Security events and risk rules"
