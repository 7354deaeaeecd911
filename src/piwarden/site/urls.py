from django.urls import path

from piwarden.site import (
    cookie_views,
    guardian_views,
    incident_views,
    policy_views,
    rights_archive_views,
    rights_views,
    security_views,
    views,
)

app_name = "site"

urlpatterns = [
    path("", views.home, name="home"),
    path("privacy/", views.privacy, name="privacy"),
    path("privacy/versions/", policy_views.versions, name="privacy_versions"),
    path("privacy/versions/<int:number>/", policy_views.version, name="privacy_version"),
    path("privacy/notice/dismiss/", policy_views.dismiss_notice, name="policy_notice_dismiss"),
    path("contact/", views.contact, name="contact"),
    path("cookies/", cookie_views.cookies, name="cookies"),
    path("cookies/delete/", cookie_views.delete_cookies, name="cookies_delete"),
    path("consultation/", views.consultation, name="consultation"),
    path("consultation/received/", views.consultation_received, name="consultation_received"),
    # A refusal by a risk rule, reviewed by a person on request (PIPL 24): cite its reference.
    path("security/review/", security_views.security_review, name="security_review"),
    path("rights/", rights_views.rights, name="rights"),
    path("rights/verify/", rights_views.rights_verify, name="rights_verify"),
    path("rights/received/", rights_views.rights_received, name="rights_received"),
    path("rights/status/", rights_views.rights_status, name="rights_status"),
    path("rights/status/code/", rights_views.rights_status_code, name="rights_status_code"),
    path("rights/status/view/", rights_views.rights_status_view, name="rights_status_view"),
    # rights-queue: the archive of an access or copy request, for the verified requester
    path("rights/status/archive/", rights_archive_views.rights_archive, name="rights_archive"),
    path(
        "rights/status/archive/download/", rights_archive_views.rights_archive_download, name="rights_archive_download"
    ),
    # incidents: the public notice of an incident, where persons cannot be reached one by one (PIPL 57)
    path("incidents/<slug:slug>/", incident_views.incident_notice, name="incident_notice"),
    # children (policy §八): the guardian's page, reached through the e-mailed one-use link
    path("guardian/<str:token>/", guardian_views.guardian, name="guardian"),
]
