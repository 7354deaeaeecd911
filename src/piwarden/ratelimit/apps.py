from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "piwarden.ratelimit"
    label = "ratelimit"
    verbose_name = "Rate limits"
