from django.urls import path

from piwarden.backoffice import views

app_name = "backoffice"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("preferences/", views.preferences_view, name="preferences"),
    path("", views.inbox, name="inbox"),
    path("inquiries/<str:reference>/", views.inquiry_detail, name="inquiry"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export/", views.audit_export, name="audit_export"),
    path("rights/", views.rights_queue, name="rights_queue"),
    path("rights/<str:reference>/", views.rights_request_detail, name="rights_request"),
    path("reviews/", views.access_reviews, name="access_reviews"),
    path("reviews/<int:review_id>/", views.access_review, name="access_review"),
    path("reviews/<int:review_id>/signed.json", views.access_review_export, name="access_review_export"),
    path("training/", views.training_page, name="training"),
]
