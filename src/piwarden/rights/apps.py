from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "piwarden.rights"
    label = "rights"
    verbose_name = "Rights requests"
