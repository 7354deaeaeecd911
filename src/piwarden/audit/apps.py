from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "piwarden.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from piwarden.audit import checks  # noqa: F401, PLC0415  # registers the triggers' deploy check
