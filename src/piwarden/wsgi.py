"""The WSGI application (gunicorn, granian, runserver).

It refuses to load when the keys are missing or are not the ones the database was written with:
one line on stderr, then exit status 4, which gunicorn reads as "application failed to load" and
stops altogether, so no worker ever serves under the wrong keys.
"""

import gc
import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "piwarden.settings")
application = get_wsgi_application()

from piwarden.vault.keys import VaultUnavailable  # noqa: E402  # the app registry must be ready first
from piwarden.vault.startup import refuse_to_serve_without_keys  # noqa: E402  # idem

try:
    refuse_to_serve_without_keys()
except VaultUnavailable as exc:
    sys.stderr.write(f"piwarden: {exc}\n")
    sys.stderr.flush()
    raise SystemExit(4) from None

# What start-up made (Django, the apps, the URLconf, the declaration) lives as long as the process:
# out of the collector's sight, so that its full passes, which a busy worker triggers every few
# hundred requests, walk the requests' own objects only (~80 000 objects fewer).
from django.urls import get_resolver  # noqa: E402  # the app registry must be ready first

get_resolver().url_patterns  # noqa: B018  # imports the views and their modules now, not at the first request
gc.freeze()
