from django.urls import path

from consent import views
from consent.views import audit

app_name = "audit"

urlpatterns = [
    path("", audit.audit_index, name="index"),
    path("side-by-side.csv", audit.side_by_side_csv, name="side_by_side_csv"),
    path("tracks/", audit.drill_down, name="tracks"),
    path("ledger/", audit.ledger_search, name="ledger"),
    path("how/", audit.how, name="how"),
    path("checks/run/", audit.run_check, name="run_check"),
    path("policy-run/", audit.policy_run, name="policy_run"),
    path("policy/", views.policy_edit, name="policy"),
]
