from django.apps import AppConfig


class InquiriesConfig(AppConfig):
    name = "piwarden.inquiries"
    label = "inquiries"
    verbose_name = "Consultation requests"
