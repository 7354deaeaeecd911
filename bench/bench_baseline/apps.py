from django.apps import AppConfig


class BenchBaselineConfig(AppConfig):
    name = "bench_baseline"
    label = "bench_baseline"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Benchmark baseline (bench only)"
