"""The WSGI application (gunicorn, granian, runserver).

It refuses to load when the keys are missing or are not the ones the database was written with,
and when the static files were not collected: one line on stderr, then exit status 4, which
gunicorn reads as "application failed to load" and stops altogether, so no worker ever serves
under the wrong keys, nor answers 500 to every page.
"""

import gc
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "piwarden.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402  # the app registry must be ready first
from django.contrib.staticfiles.storage import staticfiles_storage  # noqa: E402  # idem
from django.core.wsgi import get_wsgi_application  # noqa: E402  # idem

from piwarden.vault.keys import VaultUnavailable  # noqa: E402  # idem
from piwarden.vault.startup import refuse_to_serve_without_keys  # noqa: E402  # idem


def _refuse(reason: str) -> None:
    sys.stderr.write(f"piwarden: {reason}\n")
    sys.stderr.flush()
    raise SystemExit(4)


try:
    refuse_to_serve_without_keys()
except VaultUnavailable as exc:
    _refuse(str(exc))

# Without the collected files' manifest every page fails (its stylesheet has no hashed name): a
# server that answers 500 to everyone is worse than one that does not start.  `piwarden serve`
# collects them; a server started on this module by hand must have run `piwarden collectstatic`.
manifest: str = getattr(staticfiles_storage, "manifest_name", "")  # settings.STORAGES: a manifest storage
if not settings.DEBUG and manifest and not staticfiles_storage.exists(manifest):
    _refuse(
        f"the static files are not collected ({settings.STATIC_ROOT} has no {manifest}): "
        "run `piwarden collectstatic` first, then start the server again"
    )

application = get_wsgi_application()

# What start-up made (Django, the apps, the URLconf, the declaration) lives as long as the process:
# out of the collector's sight, so that its full passes, which a busy worker triggers every few
# hundred requests, walk the requests' own objects only (~80 000 objects fewer).
from django.urls import get_resolver  # noqa: E402  # the app registry must be ready first

get_resolver().url_patterns  # noqa: B018  # imports the views and their modules now, not at the first request
gc.freeze()
