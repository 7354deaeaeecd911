from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "piwarden.retention"
    label = "retention"
    verbose_name = "Retention"

    def ready(self) -> None:
        from piwarden.retention import checks  # noqa: F401, PLC0415  # registers the system check
