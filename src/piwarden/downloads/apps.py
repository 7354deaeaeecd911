from django.apps import AppConfig

from piwarden.policy.stores import FileStore


class DownloadsConfig(AppConfig):
    name = "piwarden.downloads"
    label = "downloads"
    verbose_name = "Downloadable resources and visitors' histories"

    # The published files: white papers and datasheets, public, under random names (files.py).
    file_stores = (FileStore("files", "PIWARDEN_DOWNLOADS_DIR/<32 hex digits>: the published resources", sealed=False),)

    def ready(self) -> None:
        from piwarden.downloads import actions, browsing  # noqa: PLC0415  # apps are loaded first

        browsing.connect(actions.record_page_views)
