from django.urls import path

from piwarden.site import views

app_name = "site"

urlpatterns = [
    path("", views.home, name="home"),
    path("privacy/", views.privacy, name="privacy"),
    path("contact/", views.contact, name="contact"),
    path("consultation/", views.consultation, name="consultation"),
    path("consultation/received/", views.consultation_received, name="consultation_received"),
]
