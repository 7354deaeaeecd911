from django.apps import AppConfig

from piwarden.policy.stores import FileStore


class PeopleConfig(AppConfig):
    name = "piwarden.people"
    label = "people"
    verbose_name = "People (data subjects)"

    # Declared in policy/declaration.toml as "people:erasure_ledger" (piwarden.people.ledger).
    file_stores = (
        FileStore("erasure_ledger", "PIWARDEN_ERASURE_LEDGER (PIWARDEN_DATA_DIR/erasures.ledger)", sealed=False),
    )

    def ready(self) -> None:
        # Every app's personal_data.py registers the exporters and erasers of the categories it
        # stores (piwarden.people.registry), as the admin finds admin.py.
        from django.utils.module_loading import autodiscover_modules  # noqa: PLC0415  # keep apps.py free of imports that load models

        autodiscover_modules("personal_data")
        from piwarden.people import checks  # noqa: F401, PLC0415  # registers the coverage check
