from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path
from django.urls.resolvers import URLPattern, URLResolver

from piwarden.api.main import api, no_such_operation
from piwarden.site import captcha

urlpatterns: list[URLPattern | URLResolver] = [
    # The CAPTCHA picture is drawn by our own view (piwarden.site.captcha says why), at the library's
    # URL and name, ahead of the library's routes (whose 2x picture is off and audio has no engine).
    path("captcha/image/<str:key>/", captcha.picture, name="captcha-image"),
    path("captcha/", include("captcha.urls")),
    path("backoffice/", include("piwarden.backoffice.urls")),
    path("api/", api.urls),  # the JSON API, not per language: Accept-Language chooses
    path("api/<path:rest>", no_such_operation),
]
# Chinese at /, English at /en/ (DESIGN: zh-hans first, English second).
urlpatterns += i18n_patterns(
    path("account/", include("piwarden.accounts.urls")),
    path("", include("piwarden.site.urls")),
    path("", include("piwarden.downloads.urls")),
    prefix_default_language=False,
)

# Refused requests get the site's own page in the visitor's language, not Django's bare English
# one; a body too large answers 413 (see piwarden.site.views.bad_request).  404 is 404.html.
handler400 = "piwarden.site.views.bad_request"

if settings.PIWARDEN_BENCH:  # `make bench` only (see settings): the bare comparison view
    urlpatterns.append(path("bench/baseline/", include("bench_baseline.urls")))

# A database or disk outage answers 503 with Retry-After in the visitor's language (site/outage.py).
handler500 = "piwarden.site.outage.server_error"
