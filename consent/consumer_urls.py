"""The staff consumer pages, under /audit/consumers/ (the staff MFA gate)."""

from django.urls import path

from consent.views import consumers

app_name = "consumers"

urlpatterns = [
    path("", consumers.consumer_list, name="list"),
    path("new/", consumers.consumer_new, name="new"),
    path("<int:consumer_id>/", consumers.consumer_detail, name="detail"),
    path("<int:consumer_id>/pause/", consumers.consumer_pause, name="pause"),
    path("<int:consumer_id>/resume/", consumers.consumer_resume, name="resume"),
    path("<int:consumer_id>/rotate/", consumers.consumer_rotate, name="rotate"),
    path("<int:consumer_id>/test/", consumers.consumer_test, name="test"),
    path("<int:consumer_id>/replay/", consumers.consumer_replay, name="replay"),
]
