"""The staff audit: the figures side by side, the parity finding, the
platform's own AI, the policy and its history, changes over time, health,
the tracks behind each figure, the ledger search, CSV exports and how each
number is computed. Auditors and policy admins (and superusers) only."""

from django.contrib import messages
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from catalog.models import LicenseClass
from config.doorbell import ring
from consent import audit, tasks
from consent.audit.figures import CLASSES, FROM_SQL
from consent.audit.timeline import DEFAULT_RANGE
from consent.forms_audit import DrillDownForm, LedgerSearchForm, RangeForm
from consent.models import CheckRun, Partner
from consent.policy import policy_current
from consent.propagation.health import consumer_lag, consumers_health
from consent.selectors import (
    check_runs_latest,
    policy_run_progress,
    policy_table,
    policy_versions_described,
)
from consent.uses import USES
from consent.views.common import STAFF_ONLY, staff_page, staff_viewer

CHECK_TASKS = {
    CheckRun.Kind.CONSENT: tasks.check_consent,
    CheckRun.Kind.LEDGER: tasks.verify_ledger,
    CheckRun.Kind.CONSUMERS: tasks.reconcile_consumers,
    CheckRun.Kind.SIGNALS: tasks.check_signals,
}


def partners_overdue_as_of(figures: dict) -> list[tuple]:
    """Each partner with its overdue acknowledgements as of the figures
    (``None`` for a partner added since)."""
    counts = figures.get("partners_overdue", {})
    return [
        (partner, counts.get(str(partner.pk)))
        for partner in Partner.objects.order_by("name")
    ]


def _csv(filename: str, header: list[str], chunks) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        audit.csv_lines(header, chunks), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_page
@require_GET
def audit_index(request: HttpRequest) -> HttpResponse:
    managing = staff_viewer(request, refusal=STAFF_ONLY)
    snapshot, figures = audit.audit_figures_current()
    policy = policy_current()
    range_form = RangeForm(request.GET)
    days, use = DEFAULT_RANGE, ""
    if range_form.is_valid():  # an invalid range shows its error, and 30 days
        days = range_form.cleaned_data["days"]
        use = range_form.cleaned_data["use"]
    versions = policy_versions_described()
    as_of = (snapshot.created_at if snapshot else timezone.now()).date()
    line = audit.timeline(figures=figures, as_of=as_of, days=days, use=use)
    consumers = [
        (health, consumer_lag(consumer=health.consumer))
        for health in consumers_health()
    ]
    return render(
        request,
        "consent/audit.html",
        {
            "snapshot": snapshot,
            "tables": audit.side_by_side(figures),
            "parity": audit.parity(policy, figures),
            "platform": audit.platform_ai(figures),
            "classes": CLASSES,
            "policy": policy,
            "policy_rows": policy_table(policy.rules),
            "versions": versions,
            "policy_run": policy_run_progress(),
            "range_form": range_form,
            "timeline": line,
            "charts": [
                audit.chart("Grants per day", line.days, line.grants),
                audit.chart("Denials per day", line.days, line.denials),
                audit.chart(
                    "Eligible at the end of each day",
                    line.days,
                    line.eligible,
                    level=True,
                ),
            ],
            "range_use": USES[use].name if use else "",
            "days": days,
            "consumers": consumers,
            "partners": partners_overdue_as_of(figures),
            "checks": [
                (kind, label, run)
                for (kind, _), (label, run) in zip(
                    CheckRun.Kind.choices, check_runs_latest(), strict=True
                )
            ],
            "can_edit_policy": managing,
        },
    )


@staff_page
@require_GET
def side_by_side_csv(request: HttpRequest) -> HttpResponse:
    staff_viewer(request, refusal=STAFF_ONLY)
    snapshot, figures = audit.audit_figures_current()
    names = dict(CLASSES)

    def chunks():
        yield [
            [
                table.use.slug,
                names[cell.license_class],
                row.figure.key,
                cell.count,
                "" if cell.percent is None else cell.percent,
                snapshot.created_at.isoformat() if snapshot else "",
            ]
            for table in audit.side_by_side(figures)
            for row in table.rows
            for cell in row.cells
        ]

    return _csv(
        "refrain-audit-side-by-side.csv",
        ["use", "license_class", "figure", "count", "percent_of_tracks", "as_of"],
        chunks(),
    )


@staff_page
@require_GET
def drill_down(request: HttpRequest) -> HttpResponse:
    staff_viewer(request, refusal=STAFF_ONLY)
    form = DrillDownForm(request.GET)
    if not form.is_valid():
        return render(
            request, "consent/audit/drill_down.html", {"form": form}, status=400
        )
    data = form.cleaned_data
    figure = audit.FIGURE_BY_KEY[data["figure"]]
    where = {"license_class": data["license_class"], "use": data["use"]}
    if request.GET.get("format") == "csv":
        return _csv(
            f"refrain-{data['license_class']}-{data['use']}-{figure.key}.csv",
            audit.DRILL_DOWN_COLUMNS,
            audit.drill_down_csv_chunks(figure, **where),
        )
    rows = audit.drill_down_rows(
        figure, after=data["after"] or 0, limit=audit.search.PAGE + 1, **where
    )
    snapshot = audit.audit_snapshot_latest()
    counted = None
    if snapshot is not None:
        cell = snapshot.figures.get("side_by_side", {}).get(
            f"{data['license_class']}:{data['use']}", {}
        )
        counted = cell.get(figure.key)
    more = len(rows) > audit.search.PAGE
    rows = rows[: audit.search.PAGE]
    query = request.GET.copy()
    query.pop("after", None)
    return render(
        request,
        "consent/audit/drill_down.html",
        {
            "form": form,
            "figure": figure,
            "class_name": LicenseClass(data["license_class"]).label,
            "use": USES[data["use"]],
            "rows": [
                (row, audit.answer_words(row.decision, row.default)) for row in rows
            ],
            "next_after": rows[-1].track.pk if more and rows else None,
            "counted": counted,
            "snapshot": snapshot,
            "query": query.urlencode(),
        },
    )


@staff_page
@require_GET
def ledger_search(request: HttpRequest) -> HttpResponse:
    staff_viewer(request, refusal=STAFF_ONLY)
    form = LedgerSearchForm(request.GET)
    valid = form.is_valid()
    if valid and request.GET.get("format") == "csv":
        return _csv(
            "refrain-ledger.csv",
            [name for name, _ in audit.LEDGER_COLUMNS],
            audit.ledger_csv_chunks(form.query()),
        )
    rows, older = [], None
    if valid:
        rows = audit.ledger_page(
            form.query(),
            before=form.cleaned_data.get("before"),
            limit=audit.search.PAGE + 1,
        )
        if len(rows) > audit.search.PAGE:
            rows = rows[: audit.search.PAGE]
            older = rows[-1].pk
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("format", None)
    return render(
        request,
        "consent/audit/ledger.html",
        {"form": form, "rows": rows, "older": older, "query": query.urlencode()},
        status=200 if valid else 400,
    )


@staff_page
@require_GET
def how(request: HttpRequest) -> HttpResponse:
    staff_viewer(request, refusal=STAFF_ONLY)
    return render(
        request,
        "consent/audit/how.html",
        {
            "figures": audit.FIGURES,
            "side_by_side_sql": audit.SIDE_BY_SIDE_SQL,
            "platform_sql": audit.PLATFORM_SQL,
            "timeline_sql": audit.timeline_sql(connection.vendor),
            "drill_down_sql": audit.drill_down_sql(audit.FIGURE_BY_KEY["eligible"]),
            "from_sql": FROM_SQL,
            "threshold": audit.PUBLIC_THRESHOLD,
        },
    )


@staff_page
@require_POST
def run_check(request: HttpRequest) -> HttpResponse:
    """A policy admin asks for a check now; a worker runs it and records it."""
    if not staff_viewer(request, refusal=STAFF_ONLY):
        messages.error(request, "Only policy admins start checks.")
        return redirect("audit:index")
    kind = request.POST.get("kind", "")
    if kind not in CHECK_TASKS:
        messages.error(request, "There is no such check.")
        return redirect("audit:index")
    label = CheckRun.Kind(kind).label
    if ring(CHECK_TASKS[kind], request.user.email):
        messages.success(
            request,
            f"“{label}” is queued: a worker runs it in the background and its "
            "result appears here when it finishes.",
        )
    else:
        messages.error(
            request,
            f"“{label}” could not be queued right now; it still runs tonight. "
            "Try again in a minute.",
        )
    return redirect("audit:index")


@staff_page
@require_GET
def policy_run(request: HttpRequest) -> HttpResponse:
    """The progress of a policy run in progress (polled by the audit page)."""
    staff_viewer(request, refusal=STAFF_ONLY)
    return render(
        request, "consent/audit/_policy_run.html", {"policy_run": policy_run_progress()}
    )
