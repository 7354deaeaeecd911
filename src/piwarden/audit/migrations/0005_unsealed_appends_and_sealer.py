"""Appends without a lock: events get a content digest at insert and are chained later by the sealer.

Existing events were chained under the old scheme (hash over a JSON body including seq).  They
are checked under that scheme first (a broken old chain stops the migration: verify it before
upgrading), then given their digest and returned to "pending", in their order, so that the first
``piwarden audit seal`` chains them under the new scheme.  The functions below are frozen copies
of the code of the time (a migration never imports app code); re-running the step is harmless.
"""

import hashlib
import json


from django.conf import settings
from django.db import migrations, models


def _json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _old_hash(prev_hash, event):
    body = {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(),
        "event_type": event.event_type,
        "actor_kind": event.actor_kind,
        "actor": event.actor_id,
        "person": str(event.person_id) if event.person_id is not None else None,
        "purpose": event.purpose,
        "fields": event.fields,
        "reason": event.reason,
        "extra": event.extra,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(prev_hash.encode("ascii") + canonical.encode("utf-8")).hexdigest()


def _digest(event):
    framed = json.dumps(
        [
            event.occurred_at.isoformat(),
            event.event_type,
            event.actor_kind,
            event.actor_id,
            str(event.person_id) if event.person_id is not None else None,
            event.purpose,
            _json(event.fields),
            event.reason,
            _json(event.extra),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(framed.encode("utf-8")).hexdigest()


def unchain_for_the_sealer(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    prev = "0" * 64
    for event in AuditEvent.objects.filter(digest="").order_by("seq").iterator(chunk_size=2000):
        if event.prev_hash != prev or _old_hash(prev, event) != event.hash:
            raise RuntimeError(f"the audit chain is broken at seq {event.seq}: not migrated (keep this database as evidence)")
        prev = event.hash
    pks = list(AuditEvent.objects.filter(digest="").order_by("seq").values_list("pk", flat=True))
    for start in range(0, len(pks), 2000):
        batch = list(AuditEvent.objects.filter(pk__in=pks[start : start + 2000]))
        for event in batch:
            event.digest, event.seq, event.prev_hash, event.hash = _digest(event), None, None, None
        AuditEvent.objects.bulk_update(batch, ["digest", "seq", "prev_hash", "hash"])
    AuditChainHead.objects.update(seq=0, hash="0" * 64)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_outbox_reads_and_retention_sweeps'),
        ('people', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='auditevent',
            options={'ordering': ['id']},
        ),
        migrations.RemoveIndex(
            model_name='auditevent',
            name='audit_person_seq_idx',
        ),
        migrations.AddField(
            model_name='auditevent',
            name='digest',
            field=models.CharField(default='', max_length=64),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='seq',
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['person', 'id'], name='audit_person_id_idx'),
        ),
        migrations.RunPython(unchain_for_the_sealer, migrations.RunPython.noop),
    ]
