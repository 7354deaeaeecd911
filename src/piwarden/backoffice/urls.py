from django.urls import path

from piwarden.backoffice import downloads_views, security_views, staff_views, views

app_name = "backoffice"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("preferences/", views.preferences_view, name="preferences"),
    path("", views.inbox, name="inbox"),
    path("inquiries/<str:reference>/", views.inquiry_detail, name="inquiry"),
    path("inquiries/<str:reference>/assign/", views.inquiry_assign, name="inquiry_assign"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export/", views.audit_export, name="audit_export"),
    path("rights/", views.rights_queue, name="rights_queue"),
    path("rights/<str:reference>/", views.rights_request_detail, name="rights_request"),
    path("promises/", views.promises, name="promises"),
    path("alerts/", security_views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/", security_views.alert_detail, name="alert"),
    path("security/", security_views.security_events, name="security_events"),
    path("staff/", staff_views.staff_list, name="staff"),
    path("staff/<int:user_id>/", staff_views.staff_change, name="staff_change"),
    path("grants/", staff_views.grants, name="grants"),
    path("grants/<int:grant_id>/", staff_views.grant_decide, name="grant_decide"),
    path("enrol/<str:uid>/<str:token>/", staff_views.enrol, name="enrol"),
    path("reviews/", views.access_reviews, name="access_reviews"),
    path("reviews/<int:review_id>/", views.access_review, name="access_review"),
    path("reviews/<int:review_id>/signed.json", views.access_review_export, name="access_review_export"),
    path("training/", views.training_page, name="training"),
    path("downloads/", downloads_views.downloads_page, name="downloads"),
    path("downloads/<uuid:resource_id>/", downloads_views.download_edit, name="download_edit"),
]
