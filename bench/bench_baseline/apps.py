from django.apps import AppConfig


class BenchBaselineConfig(AppConfig):
    name = "bench_baseline"
    label = "bench_baseline"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Benchmark baseline (bench only)"
    # Installed only by `make bench` (PIWARDEN_BENCH=on) in a throw-away data directory, with
    # generated values: it is the plaintext "before" that the privacy path is measured against.
    privacy_inventory_exempt = "make bench's plaintext comparison table (PIWARDEN_BENCH=on only, generated data)"
