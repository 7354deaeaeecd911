from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "piwarden.staff"
    label = "staff"
    verbose_name = "Staff"
