"""Public URLs of the signals, mounted at the site's root (no namespace: the
well-known paths are fixed by their specifications)."""

from django.urls import path

from consent.signals import public_views

urlpatterns = [
    path("t/<slug:public_id>/", public_views.track_page, name="public_track"),
    path(
        "t/<slug:public_id>/training-mining.json",
        public_views.track_training_mining,
        name="public_track_training_mining",
    ),
    path(
        "t/<slug:public_id>/license.rsl",
        public_views.track_license,
        name="public_track_license",
    ),
    path("robots.txt", public_views.robots_txt, name="robots_txt"),
    path(".well-known/tdmrep.json", public_views.tdmrep_json, name="tdmrep_json"),
    path("license.rsl", public_views.site_license, name="site_license"),
]
