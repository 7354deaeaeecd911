from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "piwarden.audit"
    label = "audit"
    verbose_name = "Audit log"
