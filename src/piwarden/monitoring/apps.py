from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "piwarden.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
