"""Receipt e-mails per the artist's choice: ``ReceiptEmailPreference`` (no row
means one e-mail per burst of changes) and ``Receipt.email_skipped``, set when
the outbox settles a receipt without an e-mail because the artist chose none.

The column has a database default, so the PostgreSQL switch function's INSERT
is unchanged, and PostgreSQL adds it without rewriting the table.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_user_invitation_pending'),
        ('consent', '0023_audit_figures'),
    ]

    operations = [
        migrations.AddField(
            model_name='receipt',
            name='email_skipped',
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.CreateModel(
            name='ReceiptEmailPreference',
            fields=[
                ('artist', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='receipt_email_preference', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('frequency', models.CharField(choices=[('each', 'After each change'), ('daily', 'Once a day'), ('none', 'Never')], default='each', max_length=8)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('frequency__in', ['each', 'daily', 'none'])), name='consent_receiptemails_frequency_known')],
            },
        ),
    ]
