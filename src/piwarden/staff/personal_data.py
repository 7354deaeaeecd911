"""What is stored about staff members, exported and erased (``piwarden.people.registry``).

These categories are about the staff who run the site, not about visitors: each exporter
yields one staff member's own data (``export_staff``), each eraser acts on one staff account.

* ``staff_accounts``: kept and deactivated.  Audit events name the account as their actor, and
  accounting for every access (PIPL 51) needs to know who acted; the account is deactivated (the
  date recorded), its password made unusable and its name and e-mail cleared, and it is deleted at
  the end of its declared retention (:func:`delete_accounts`, by the retention sweep: a tombstone
  keeping the id only).
* ``staff_authenticators`` and ``staff_sign_in_state``: the authenticator rows, deleted with the
  data keys of their secrets destroyed (one function: whichever eraser runs first finds them).
  The secret itself is never exported: whoever held the archive could sign in as the staff member.
* ``staff_preferences``, ``staff_sessions`` and ``staff_devices``: deleted.
* ``staff_access_grants``: kept.  A grant is the record that an administrator was allowed to see
  personal data, when and why; it is deleted at the end of its declared retention.
* ``sign_in_records``: django-axes' records of sign-in attempts under the account's user name, kept:
  the Cybersecurity Law requires network logs for six months (deleted after the declared 184 days).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_otp.plugins.otp_totp.models import TOTPDevice

from piwarden.people.registry import Deletes, Keeps, Record, Subject, register
from piwarden.staff.models import (
    AccessGrant,
    AccessReviewLine,
    Authenticator,
    Deactivation,
    KnownDevice,
    StaffPreference,
    TrainingNotice,
    TrainingRecord,
)
from piwarden.vault.crypto import destroy_data_key

CHUNK = 200


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def export_account(user: User) -> Iterator[Record]:
    yield {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "password": "a one-way hash is held; the password itself never is",
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "date_joined": _iso(user.date_joined),
        "last_login": _iso(user.last_login),
        "deactivated_at": _iso(Deactivation.objects.filter(user=user).values_list("deactivated_at", flat=True).first()),
    }


def deactivate(user: User) -> datetime.datetime:
    """Make the account inactive and record when (in the caller's transaction); an account already
    deactivated keeps its first date.  Returns the date: its retention's clock starts there."""
    now = timezone.now()
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    deactivation, _ = Deactivation.objects.get_or_create(user=user, defaults={"deactivated_at": now})
    return deactivation.deactivated_at


def deactivate_account(user: User) -> int:
    deactivate(user)
    user.set_unusable_password()
    user.first_name = user.last_name = user.email = ""
    user.save(update_fields=["password", "first_name", "last_name", "email"])
    return 1


# What a deleted account's row keeps: its id, which audit events (hash-chained: their actor's id is
# part of each hash) and the records of who did what (grants, reviews, publications, holds…) name.
TOMBSTONE_JOINED = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# Every link to a staff account (auth.User), decided one by one: what its deletion does with it.
# tests/retention/test_staff_accounts.py fails on a link in neither, so a new link is a decision.
DELETED_WITH_ACCOUNT = (
    "auth.User_groups.user",  # role membership
    "auth.User_user_permissions.user",
    "staff.Authenticator.user",  # the TOTP secret's data key destroyed
    "otp_totp.TOTPDevice.user",  # django-otp's own table, emptied by migration staff.0002
    "staff.KnownDevice.user",
    "staff.StaffPreference.user",
    "staff.Deactivation.user",
    "staff.TrainingRecord.staff",  # staff_training: its own rule first, on the same clock
    "staff.TrainingNotice.staff",
)
# The id alone stays (a tombstone): these rows say who acted, each has its own retention, and a null
# would read as "nobody" or "the operator at the command line".
KEEP_THE_ID = {
    "audit.AuditEvent.actor": "hash-chained (the actor's id is in the hash) and append-only: its own cut",
    "staff.AccessGrant.requester": "who was allowed to see personal data (staff_access_grants, 1095 days)",
    "staff.AccessGrant.decided_by": "who allowed it (staff_access_grants)",
    "staff.AccessReview.opened_by": "the signed review names its actors (staff_access_reviews)",
    "staff.AccessReviewLine.staff": "the signed review's line (staff_access_reviews)",
    "staff.AccessReviewLine.decided_by": "the signed review's decision (staff_access_reviews)",
    "staff.TrainingRecord.recorded_by": "who recorded another member's training (staff_training)",
    "inquiries.Inquiry.assigned_to": "who answers the request (consultation)",
    "children.ChildMark.marked_by": "who marked a record as a child's (child_protection_records)",
    "rights.ScheduleYear.loaded_by": "who loaded a year's working days (not personal: the schedule)",
    "rights.RightsRequest.assigned_to": "who handles the request (rights_requests)",
    "rights.RightsRequest.approved_by": "who approved the answer (rights_requests)",
    "rights.RightsRequest.refusal_proposed_by": "who proposed a refusal (rights_requests)",
    "rights.RightsRequest.refusal_rejected_by": "who rejected it (rights_requests)",
    "monitoring.Alert.staff": "whose actions raised the alert (staff_security_alerts)",
    "monitoring.Alert.acknowledged_by": "who acknowledged it (staff_security_alerts)",
    "security.Refusal.decided_by": "who reviewed a refusal (security_refusals)",
    "retention.LegalHold.placed_by": "who placed the hold (legal_holds)",
    "retention.LegalHold.lifted_by": "who lifted it (legal_holds)",
    "downloads.Resource.published_by": "who published a download (not personal: the library)",
}


def tombstone_username(pk: int) -> str:
    """A user name no one can choose (':' is not allowed in user names), unique with the id."""
    return f"deleted:{pk}"


def delete_accounts(accounts: QuerySet[User]) -> int:
    """Delete the personal data of these staff accounts, in the caller's transaction; each row stays
    as a pseudonymous tombstone with its id only.

    Gone: the user name, name, e-mail, password hash, flags, sign-in and joining times, role
    membership and permissions, authenticators (their data keys destroyed), known devices,
    preferences, live sessions and the deactivation date; and any training record still there (the
    sweep's own rule removes them first, on the same clock; a hold on them keeps the account too).

    The row is not deleted: the audit log names it as actor (each event's hash covers the id, and
    the log's triggers refuse the UPDATE a SET_NULL would be), and the records of who asked,
    decided, published, loaded or placed something point to it (grants, reviews, downloads,
    schedule years, holds, alerts…); each of those has its own retention, and a null would say
    "the operator at the command line" where a staff member acted.  Returns how many accounts."""
    users = list(accounts.select_for_update().order_by("pk"))
    if not users:
        return 0
    ids = [user.pk for user in users]
    for user in users:
        delete_authenticators(user)
    TOTPDevice.objects.filter(user_id__in=ids).delete()  # django-otp's own, emptied by migration staff.0002
    KnownDevice.objects.filter(user_id__in=ids).delete()
    StaffPreference.objects.filter(user_id__in=ids).delete()
    TrainingRecord.objects.filter(staff_id__in=ids).delete()
    TrainingNotice.objects.filter(staff_id__in=ids).delete()
    Deactivation.objects.filter(user_id__in=ids).delete()
    _delete_sessions_of(ids)
    User.groups.through.objects.filter(user_id__in=ids).delete()
    User.user_permissions.through.objects.filter(user_id__in=ids).delete()
    for user in users:
        user.username = tombstone_username(user.pk)
        user.set_unusable_password()
        user.first_name = user.last_name = user.email = ""
        user.is_active = user.is_staff = user.is_superuser = False
        user.last_login = None
        user.date_joined = TOMBSTONE_JOINED
    User.objects.bulk_update(users, _TOMBSTONED)
    return len(users)


_TOMBSTONED = [
    "username",
    "password",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
    "last_login",
    "date_joined",
]


def export_authenticator_secrets(user: User) -> Iterator[Record]:
    for device in Authenticator.objects.filter(user=user).order_by("created_at", "id"):
        yield {"authenticator": device.name, "secret": "held encrypted; not exported (it signs you in)"}


def export_sign_in_state(user: User) -> Iterator[Record]:
    for device in Authenticator.objects.filter(user=user).order_by("created_at", "id"):
        yield {
            "authenticator": device.name,
            "confirmed": device.confirmed,
            "created_at": _iso(device.created_at),
            "last_used_at": _iso(device.last_used_at),
            "drift": device.drift,
            "last_t": device.last_t,
            "throttling_failure_count": device.throttling_failure_count,
            "throttling_failure_timestamp": _iso(device.throttling_failure_timestamp),
        }


def delete_authenticators(user: User) -> int:
    deleted = 0
    for device in Authenticator.objects.filter(user=user).select_related("data_key"):
        key = device.data_key
        device.delete()
        destroy_data_key(key)
        deleted += 1
    return deleted


def export_preferences(user: User) -> Iterator[Record]:
    for preference in StaffPreference.objects.filter(user=user):
        yield {"language": preference.language}


def delete_preferences(user: User) -> int:
    deleted, _ = StaffPreference.objects.filter(user=user).delete()
    return deleted


def export_devices(user: User) -> Iterator[Record]:
    for device in KnownDevice.objects.filter(user=user).order_by("first_seen_at", "id"):
        yield {
            "device": "a keyed hash of this browser's random device cookie (nothing about the browser itself)",
            "first_seen_at": _iso(device.first_seen_at),
            "last_seen_at": _iso(device.last_seen_at),
            "alerted_at": _iso(device.alerted_at),
        }


def delete_devices(user: User) -> int:
    deleted, _ = KnownDevice.objects.filter(user=user).delete()
    return deleted


def _sessions_of(*user_ids: int) -> Iterator[Session]:
    # Django keeps the user id inside the signed session data: each live session is decoded.
    wanted = {str(pk) for pk in user_ids}
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator(chunk_size=CHUNK):
        if str(session.get_decoded().get("_auth_user_id")) in wanted:
            yield session


def _delete_sessions_of(user_ids: list[int]) -> int:
    keys = [session.session_key for session in _sessions_of(*user_ids)]
    deleted, _ = Session.objects.filter(session_key__in=keys).delete()
    return deleted


def export_sessions(user: User) -> Iterator[Record]:
    for session in _sessions_of(user.pk):
        yield {"expires_at": _iso(session.expire_date)}


def delete_sessions(user: User) -> int:
    return _delete_sessions_of([user.pk])


def export_access_grants(user: User) -> Iterator[Record]:
    """The grants the staff member asked for, and those they decided (who asked is not theirs)."""
    for grant in AccessGrant.objects.filter(requester=user).order_by("requested_at", "id"):
        yield {
            "category": grant.category,
            "purpose": grant.purpose,
            "reason": grant.reason,
            "hours": grant.hours,
            "status": grant.status,
            "requested_at": _iso(grant.requested_at),
            "decided_at": _iso(grant.decided_at),
            "expires_at": _iso(grant.expires_at),
        }
    for grant in AccessGrant.objects.filter(decided_by=user).order_by("decided_at", "id"):
        yield {"decided": grant.status, "category": grant.category, "decided_at": _iso(grant.decided_at)}


def export_sign_in_records(user: User) -> Iterator[Record]:
    for model in (AccessAttempt, AccessLog, AccessFailureLog):
        rows = model.objects.filter(username=user.username).order_by("attempt_time")
        for row in rows.values("attempt_time", "ip_address", "user_agent", "path_info").iterator(chunk_size=CHUNK):
            yield {"table": model.__name__, **row, "attempt_time": _iso(row["attempt_time"])}


register(
    "staff_authenticators",
    subject=Subject.STAFF,
    export=export_authenticator_secrets,
    erase=Deletes(delete_authenticators),
    module=__name__,
)
register(
    "staff_sign_in_state",
    subject=Subject.STAFF,
    export=export_sign_in_state,
    erase=Deletes(delete_authenticators),
    module=__name__,
)
register(
    "staff_preferences",
    subject=Subject.STAFF,
    export=export_preferences,
    erase=Deletes(delete_preferences),
    module=__name__,
)
register(
    "staff_accounts",
    subject=Subject.STAFF,
    export=export_account,
    erase=Keeps(
        gettext_noop(
            "Audit events name the account as their actor (PIPL 51: who accessed what); it is deactivated, its "
            "password made unusable and its name and e-mail cleared, and deleted at the end of its retention."
        ),
        restrict=deactivate_account,
    ),
    module=__name__,
)
register("staff_devices", subject=Subject.STAFF, export=export_devices, erase=Deletes(delete_devices), module=__name__)
register(
    "staff_sessions", subject=Subject.STAFF, export=export_sessions, erase=Deletes(delete_sessions), module=__name__
)
register(
    "staff_access_grants",
    subject=Subject.STAFF,
    export=export_access_grants,
    erase=Keeps(
        gettext_noop(
            "The record that the staff member was allowed to see personal data, when and why (PIPL 51); "
            "deleted at the end of its declared retention."
        )
    ),
    module=__name__,
)
register(
    "sign_in_records",
    subject=Subject.STAFF,
    export=export_sign_in_records,
    erase=Keeps(
        gettext_noop(
            "Network logs: the Cybersecurity Law requires them for at least six months; the housekeeping deletes "
            "them after the declared 184 days."
        )
    ),
    module=__name__,
)


# --- access reviews and training (issue 8 §3, §4) ---------------------------------------------


def export_access_reviews(user: User) -> Iterator[Record]:
    lines = AccessReviewLine.objects.filter(staff=user).select_related("review").order_by("review__opened_at", "id")
    for line in lines:
        yield {
            "review": line.review_id,
            "opened_at": _iso(line.review.opened_at),
            "roles": line.roles,
            "grants": line.grants,
            "reveals": line.reveals,
            "decision": line.decision,
            "decided_at": _iso(line.decided_at),
        }


def export_training(user: User) -> Iterator[Record]:
    for record in TrainingRecord.objects.filter(staff=user).order_by("completed_on", "id"):
        yield {
            "course": record.course,
            "completed_on": _iso(record.completed_on),
            "recorded_at": _iso(record.recorded_at),
        }
    for notice in TrainingNotice.objects.filter(staff=user).order_by("created_at", "id"):
        yield {
            "notice": notice.kind,
            "expires_on": _iso(notice.expires_on),
            "created_at": _iso(notice.created_at),
            "mailed_at": _iso(notice.mailed_at),
        }


register(
    "staff_access_reviews",
    subject=Subject.STAFF,
    export=export_access_reviews,
    erase=Keeps(
        gettext_noop(
            "The signed access reviews account for who had access and who confirmed it (PIPL 51, 54); a changed "
            "line would no longer verify. Deleted at the end of their declared retention."
        )
    ),
    module=__name__,
)
register(
    "staff_training",
    subject=Subject.STAFF,
    export=export_training,
    erase=Keeps(
        gettext_noop(
            "Training records show the company trained the staff who handled personal information (PIPL 51); "
            "kept until the end of their declared retention."
        )
    ),
    module=__name__,
)
