"""How long a request line may be, and who refuses one that is longer.

gunicorn reads the request line before Django sees anything, and refuses one longer than its
``limit_request_line`` (4094 bytes by default) with a bare English "400 Bad Request".  We let
gunicorn take lines up to its maximum (8190 bytes, set in ``piwarden.gunicorn_conf``) and
refuse every URL longer than :data:`MAX_URL_LENGTH` ourselves, with the site's own 414 page in the visitor's language
(:class:`piwarden.site.middleware.UrlLengthMiddleware`).  Only a line longer than 8190 bytes,
which no link of ours comes near, still gets gunicorn's own answer.
"""

from __future__ import annotations

# No page of the site needs more: the longest real URL is a language prefix, a path and a
# ten-character reference.  Browsers and proxies commonly cap URLs near 2,000 characters too.
MAX_URL_LENGTH = 2048

# gunicorn's maximum (0 would mean unlimited, which lets one client make a worker buffer any amount).
REQUEST_LINE_LIMIT = 8190
