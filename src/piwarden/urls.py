from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path
from django.urls.resolvers import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = [
    path("captcha/", include("captcha.urls")),
    path("backoffice/", include("piwarden.backoffice.urls")),
]
# Chinese at /, English at /en/ (DESIGN: zh-hans first, English second).
urlpatterns += i18n_patterns(
    path("", include("piwarden.site.urls")),
    prefix_default_language=False,
)
