"""The built-in consumer: the platform's training-data registry, on by default
and fed by the same delivery machinery as a partner. It starts with a backfill
of every track (``backfill_after = 0``), which the propagation sweep walks in
chunks, so a catalogue of any size migrates at once."""

from django.db import migrations

REGISTRY_NAME = "Training-data registry"
USES = ["genai-training", "ai-training", "ai-inference", "data-mining"]


def create(apps, schema_editor):
    Consumer = apps.get_model("consent", "Consumer")
    Consumer.objects.get_or_create(
        name=REGISTRY_NAME,
        defaults={"kind": "registry", "uses": USES, "backfill_after": 0},
    )


def remove(apps, schema_editor):
    apps.get_model("consent", "Consumer").objects.filter(kind="registry").delete()


class Migration(migrations.Migration):
    dependencies = [("consent", "0017_consent_switch_v3_records_the_outbox")]

    operations = [migrations.RunPython(create, remove)]
