"""Everything under /tracks/: the artist's list and tracks with their consent
controls (consent), plus upload and download (catalog)."""

from django.urls import path

from catalog import views as catalog_views
from consent import views
from consent.views import answers

app_name = "tracks"

urlpatterns = [
    path("", views.track_list, name="list"),
    path("upload/", views.track_upload, name="upload"),
    path("answers.csv", answers.answers_csv, name="answers_csv"),
    path("switch/", views.consent_switch, name="switch"),
    path("bulk/", views.bulk_change, name="bulk"),
    path("bulk/<uuid:public_id>/", views.bulk_status, name="bulk_status"),
    path("<str:public_id>/", views.track_detail, name="detail"),
    path("<str:public_id>/audio", catalog_views.track_audio, name="audio"),
    path("<str:public_id>/play", catalog_views.track_play, name="play"),
    path("<str:public_id>/edit/", catalog_views.track_edit, name="edit"),
    path("<str:public_id>/download/", views.track_download, name="download"),
    path("<str:public_id>/consent/", views.consent_update, name="consent"),
    path(
        "<str:public_id>/propagation/",
        views.track_propagation,
        name="propagation",
    ),
]
