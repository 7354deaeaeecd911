from django.urls import path

from piwarden.downloads import views

app_name = "downloads"

urlpatterns = [
    path("downloads/", views.resource_list, name="list"),
    path("downloads/<uuid:resource_id>/", views.download, name="file"),
    path("downloads/history/clear/", views.clear_downloads, name="clear_downloads"),
    path("downloads/pages/clear/", views.clear_pages, name="clear_pages"),
]
