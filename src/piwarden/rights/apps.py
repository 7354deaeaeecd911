from django.apps import AppConfig

from piwarden.policy.stores import FileStore


class RightsConfig(AppConfig):
    name = "piwarden.rights"
    label = "rights"
    verbose_name = "Rights requests"

    # Files written outside the database, declared in policy/declaration.toml as "rights:<name>".
    file_stores = (
        FileStore(
            "exports", "PIWARDEN_EXPORTS_DIR/*.zip.sealed: people's archives, sealed under their data key", sealed=True
        ),
    )
