from django.urls import path

from bench_baseline import views

app_name = "bench_baseline"

urlpatterns = [
    path("", views.submit, name="submit"),
    path("received/", views.received, name="received"),
    path("page/", views.page, name="page"),
]
