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

    def ready(self) -> None:
        # rights-queue: completing an access or copy request builds the archive (rights-archive).
        from piwarden.rights import archive_tasks, fulfil  # noqa: PLC0415  # apps are loaded first
        from piwarden.rights.models import RequestKind  # noqa: PLC0415

        fulfil.on_completion((RequestKind.ACCESS, RequestKind.COPY), archive_tasks.queue_archive)
