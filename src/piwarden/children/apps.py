from django.apps import AppConfig


class ChildrenConfig(AppConfig):
    name = "piwarden.children"
    label = "children"
    verbose_name = "Children's protection"
