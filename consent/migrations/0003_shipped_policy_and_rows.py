"""Policy v1 as shipped (independent: opt-in; label: prohibited, for every use)
and one consent row per use for every track that exists already. No decision
and no default exist yet, so every row starts not eligible under v1."""

from django.db import migrations

USES = ["genai-training", "ai-training", "ai-inference", "data-mining"]


def forwards(apps, schema_editor):
    PolicyVersion = apps.get_model("consent", "PolicyVersion")
    PolicyRule = apps.get_model("consent", "PolicyRule")
    if not PolicyVersion.objects.exists():
        version = PolicyVersion.objects.create(
            number=1,
            reason="Shipped policy: independent music is opt-in for every AI use; "
            "label-licensed music is never used for AI.",
        )
        PolicyRule.objects.bulk_create(
            [
                PolicyRule(version=version, license_class=cls, use=use, rule=rule)
                for cls, rule in (("independent", "opt_in"), ("label", "prohibited"))
                for use in USES
            ]
        )
    uses = ", ".join(f"('{use}')" for use in USES)
    schema_editor.execute(
        f"WITH u(use) AS (VALUES {uses}) "
        "INSERT INTO consent_trackconsent "
        "(track_id, use, decision, eligible, artist_id, license_class, updated_at) "
        "SELECT t.id, u.use, '', FALSE, t.artist_id, t.license_class, t.updated_at "
        "FROM catalog_track t CROSS JOIN u"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_ledger_append_only"),
        ("catalog", "0005_track_consent_version"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
