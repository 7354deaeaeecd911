from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "piwarden.people"
    label = "people"
    verbose_name = "People (data subjects)"
