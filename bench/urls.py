from django.urls import path

from bench import views

urlpatterns = [
    path("trivial", views.trivial),
    path("plain-list", views.plain_list),
    path("write", views.write),
]
