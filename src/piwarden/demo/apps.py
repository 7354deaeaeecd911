from django.apps import AppConfig


class DemoConfig(AppConfig):
    """``piwarden demo``: synthetic people and activity for a demo or benchmark database (no models)."""

    name = "piwarden.demo"
    label = "demo"
    verbose_name = "Demo data"
