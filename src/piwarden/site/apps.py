from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "piwarden.site"
    label = "site"
    verbose_name = "Public site"
