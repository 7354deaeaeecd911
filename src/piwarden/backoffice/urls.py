from django.urls import path

from piwarden.backoffice import incident_views, refusal_views, retention_views, security_views, staff_views, views

app_name = "backoffice"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("preferences/", views.preferences_view, name="preferences"),
    path("", views.inbox, name="inbox"),
    path("inquiries/<str:reference>/", views.inquiry_detail, name="inquiry"),
    path("inquiries/<str:reference>/assign/", views.inquiry_assign, name="inquiry_assign"),
    path("inquiries/<str:reference>/flag-child/", views.inquiry_flag_child, name="inquiry_flag_child"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export/", views.audit_export, name="audit_export"),
    path("rights/", views.rights_queue, name="rights_queue"),
    path("rights/<str:reference>/", views.rights_request_detail, name="rights_request"),
    path("promises/", views.promises, name="promises"),
    path("alerts/", security_views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/", security_views.alert_detail, name="alert"),
    path("security/", security_views.security_events, name="security_events"),
    path("refusals/", refusal_views.refusals, name="refusals"),
    path("refusals/<str:reference>/", refusal_views.refusal_detail, name="refusal"),
    path("staff/", staff_views.staff_list, name="staff"),
    path("staff/<int:user_id>/", staff_views.staff_change, name="staff_change"),
    path("grants/", staff_views.grants, name="grants"),
    path("grants/<int:grant_id>/", staff_views.grant_decide, name="grant_decide"),
    path("enrol/<str:uid>/<str:token>/", staff_views.enrol, name="enrol"),
    path("reviews/", views.access_reviews, name="access_reviews"),
    path("reviews/<int:review_id>/", views.access_review, name="access_review"),
    path("reviews/<int:review_id>/signed.json", views.access_review_export, name="access_review_export"),
    path("training/", views.training_page, name="training"),
    path("incidents/", incident_views.incidents, name="incidents"),
    path("incidents/<slug:slug>/", incident_views.incident_detail, name="incident"),
    path("incidents/<slug:slug>/report/", incident_views.incident_report, name="incident_report"),
    path("incidents/<slug:slug>/report/print/", incident_views.incident_report_print, name="incident_report_print"),
    path("incidents/<slug:slug>/report.json", incident_views.incident_report_export, name="incident_report_export"),
    path("incidents/<slug:slug>/notice/", incident_views.incident_notice, name="incident_notice"),
    path("holds/", retention_views.holds, name="holds"),
    path("holds/<int:hold_id>/lift/", retention_views.lift, name="hold_lift"),
]
