from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.track_list, name="track_list"),
    path("upload/", views.track_upload, name="track_upload"),
    path("<str:public_id>/", views.track_detail, name="track_detail"),
    path("<str:public_id>/audio", views.track_audio, name="track_audio"),
]
