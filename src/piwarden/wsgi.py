"""The WSGI application (gunicorn, granian, runserver).

It refuses to load when the keys are missing or are not the ones the database was written with:
one line on stderr, then exit status 4, which gunicorn reads as "application failed to load" and
stops altogether, so no worker ever serves under the wrong keys.
"""

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
