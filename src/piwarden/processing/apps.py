from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    name = "piwarden.processing"
    label = "processing"
    verbose_name = "Processing gate"
