from django.urls import path

from consent import views

app_name = "audit"

urlpatterns = [
    path("", views.audit, name="index"),
    path("policy/", views.policy_edit, name="policy"),
]
