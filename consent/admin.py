from django.contrib import admin

from consent.models import (
    ArtistDefault,
    BulkJob,
    CheckRun,
    LedgerAnchor,
    LedgerEntry,
    PolicyRule,
    PolicyVersion,
    Receipt,
    ReceiptEmailPreference,
    TrackConsent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff can read these; every write goes through the consent services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "track",
        "consent_version",
        "use",
        "old_state",
        "new_state",
        "new_eligible",
        "source",
        "policy_version",
    ]
    list_filter = ["source", "use", "new_eligible"]
    search_fields = ["track__public_id", "track__isrc", "request_id", "entry_hash"]
    list_select_related = ["track"]
    show_full_result_count = False
    date_hierarchy = "created_at"


@admin.register(LedgerAnchor)
class LedgerAnchorAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "track_count",
        "row_count",
        "ledger_through",
        "root",
        "key_id",
        "emailed_at",
    ]
    date_hierarchy = "created_at"


@admin.register(TrackConsent)
class TrackConsentAdmin(ReadOnlyAdmin):
    list_display = ["track", "use", "decision", "eligible", "license_class"]
    list_filter = ["use", "eligible", "license_class"]
    search_fields = ["track__public_id", "track__isrc"]
    list_select_related = ["track"]
    show_full_result_count = False


class PolicyRuleInline(admin.TabularInline):
    model = PolicyRule
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["number", "created_at", "created_by", "applied_at"]
    inlines = [PolicyRuleInline]


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "artist", "created_at", "emailed_at", "email_skipped"]
    search_fields = ["public_id", "artist__email"]


@admin.register(ReceiptEmailPreference)
class ReceiptEmailPreferenceAdmin(ReadOnlyAdmin):
    list_display = ["artist", "frequency", "updated_at"]
    list_filter = ["frequency"]
    search_fields = ["artist__email"]


@admin.register(ArtistDefault)
class ArtistDefaultAdmin(ReadOnlyAdmin):
    list_display = ["artist", "use", "decision", "updated_at"]


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "artist",
        "use",
        "state",
        "status",
        "processed",
        "total",
    ]


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "kind",
        "triggered_by",
        "checked",
        "problems",
        "repaired",
        "finished_at",
    ]
    list_filter = ["kind", "triggered_by"]
    date_hierarchy = "started_at"
