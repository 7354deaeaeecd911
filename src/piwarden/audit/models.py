"""The append-only audit log.

Every state change and every staff read of personal data writes one
:class:`AuditEvent` in the same transaction as the change (DESIGN invariant 3).
Events name fields and purposes, never values.

Tamper evidence comes in two steps, so that no request waits on another:

* **Append** (``piwarden.audit.log.record_event``): a request inserts its events
  with no lock beyond the row it writes.  Each carries ``digest`` = SHA-256 of
  its content (:func:`content_digest`); ``seq``, ``prev_hash`` and ``hash`` are
  NULL.  Order of insertion is the autoincrement ``id``.
* **Seal** (``piwarden.audit.chain.seal``), after commit, by the one sealer
  holding the :class:`AuditChainHead` row: pending events, by ``id``, get
  ``seq`` = head + 1, ``prev_hash`` = the head's hash and ``hash`` = SHA-256 of
  the row as the database stores it (prev_hash, seq, id, digest and every
  content column; ``chain.py`` spells the exact bytes).

Rewriting any column of a sealed event, deleting one or reordering them breaks
the chain; rewriting an unsealed event breaks its digest.  ``piwarden audit
verify`` names the first broken event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

REASON_MAX_LENGTH = 500


class EventType(models.TextChoices):
    CONSENT_GIVEN = "consent.given", _("Consent given")
    CONSENT_WITHDRAWN = "consent.withdrawn", _("Consent withdrawn")
    COOKIE_CHOICE = "consent.cookie_choice", _("Cookie choice made by a visitor (no person: a random consent id)")
    PROCESSING_UNDER_BASIS = "processing.basis", _("Processing under a non-consent legal basis")
    PROCESSING_REFUSED = "processing.refused", _("Processing refused by the gate")
    PERSON_CREATED = "person.created", _("Person created")
    PERSON_SHREDDED = "person.shredded", _("Person's data key destroyed")
    INQUIRY_SUBMITTED = "inquiry.submitted", _("Consultation request submitted")
    INQUIRY_ACKNOWLEDGED = "inquiry.acknowledged", _("Consultation request acknowledged by e-mail")
    MAIL_FAILED = "mail.failed", _("E-mail could not be sent after every retry")
    PII_REVEALED = "pii.revealed", _("Personal data revealed to staff")
    PII_REVEAL_REFUSED = "pii.reveal_refused", _("Reveal of personal data refused")
    PII_REVEAL_FAILED = "pii.reveal_failed", _("Reveal of personal data failed: keys unavailable")
    STAFF_ACCESS_REFUSED = "staff.access_refused", _("Staff access refused")
    STAFF_CREATED = "staff.created", _("Staff account created")
    STAFF_SIGNED_IN = "staff.signed_in", _("Staff signed in")
    STAFF_SIGN_IN_FAILED = "staff.sign_in_failed", _("Staff sign-in failed")
    STAFF_SIGNED_OUT = "staff.signed_out", _("Staff signed out")
    STAFF_LANGUAGE_SET = "staff.language_set", _("Staff console language chosen")
    STAFF_PASSWORD_CHANGED = "staff.password_changed", _("Staff password changed (their sessions ended)")
    AUDIT_VIEWED = "audit.viewed", _("Audit log viewed")
    KEYS_ROTATED = "keys.rotated", _("Key-encryption key rotated")
    OUTBOX_PRUNED = "outbox.pruned", _("Expired e-mail copies deleted from the outbox")
    OUTBOX_READ = "outbox.read", _("Sealed e-mail copies opened by the operator")
    KEYS_REPLACED = "keys.replaced", _("New keys put in place over existing data (that data is unreadable)")
    RETENTION_SWEPT = "retention.swept", _("Data past its declared retention deleted by the housekeeping")
    # retention: the sweep's batches, legal holds, the clock guard
    RETENTION_BATCH = "retention.batch", _("A batch of data past its declared retention deleted or anonymised")
    RETENTION_HOLD_PLACED = "retention.hold_placed", _("Legal hold placed: data kept past its retention")
    RETENTION_HOLD_LIFTED = "retention.hold_lifted", _("Legal hold lifted")
    RETENTION_CLOCK_CONFIRMED = (
        "retention.clock_confirmed",
        _("Clock confirmed by the operator for the retention sweep"),
    )
    SCHEDULE_LOADED = "rights.schedule_loaded", _("A year's working-day schedule loaded from the State Council notice")
    # rights-intake: the rights portal's intake (requests, codes, status page)
    RIGHTS_REQUEST_SUBMITTED = "rights.request_submitted", _("Rights request submitted (awaiting verification)")
    RIGHTS_REQUEST_VERIFIED = "rights.request_verified", _("Rights request verified and received")
    RIGHTS_CODE_SENT = "rights.code_sent", _("One-time code for a rights request issued")
    RIGHTS_CODE_REFUSED = "rights.code_refused", _("One-time code for a rights request refused")
    RIGHTS_STATUS_OPENED = "rights.status_opened", _("Rights request status opened by the person")
    # rights-execute: the fulfilment actions of issue 7 §4 (deletion ledger, restriction, withdrawal, correction)
    ERASURES_REPLAYED = "retention.erasures_replayed", _("Erasures replayed from the erasure ledger after a restore")
    PERSON_RESTRICTED = "person.restricted", _("Processing of a person's data restricted")
    RESTRICTION_LIFTED = "person.restriction_lifted", _("Restriction of processing lifted")
    PERSON_CORRECTED = "person.corrected", _("A person's data corrected")
    # branch rights-archive: the archive that answers an access or copy request
    ARCHIVE_BUILT = "rights.archive_built", _("A copy of a person's data prepared for download")
    ARCHIVE_FAILED = "rights.archive_failed", _("A copy of a person's data could not be prepared")
    ARCHIVE_DOWNLOADED = "rights.archive_downloaded", _("A copy of a person's data downloaded")
    # rights-queue: the staff queue of rights requests (assign, extend, refuse, approve, complete, remind)
    RIGHTS_ASSIGNED = "rights.assigned", _("Rights request assigned to a staff member")
    RIGHTS_STARTED = "rights.started", _("Rights request taken in hand")
    RIGHTS_EXTENDED = "rights.extended", _("Rights request extended, with the reason sent to the person")
    RIGHTS_REFUSAL_PROPOSED = "rights.refusal_proposed", _("Refusal of a rights request awaiting a second approval")
    RIGHTS_REFUSED = "rights.refused", _("Rights request refused, with the reasons sent to the person")
    RIGHTS_COMPLETED = "rights.completed", _("Rights request completed, with the result sent to the person")
    RIGHTS_FULFILLED = "rights.fulfilled", _("Rights request executed (archive, erasure, restriction, ...)")
    RIGHTS_ACTION_REFUSED = "rights.action_refused", _("Staff action on a rights request refused")
    RIGHTS_REMINDED = "rights.reminded", _("Reminder sent: a rights request reached working day 10")
    RIGHTS_ESCALATED = "rights.escalated", _("Escalated: a rights request is overdue")
    AUDIT_SIGNING_KEY_ROTATED = "audit.signing_key_rotated", _("Audit checkpoint signing key rotated")
    AUDIT_TRIGGERS_RESTORED = "audit.triggers_restored", _("The audit log's append-only triggers put back")
    AUDIT_EXPORTED = "audit.exported", _("Part of the audit log exported with its proof")
    # auditcut: the audit log cut at a signed checkpoint by the retention sweep (docs/audit-log-cut.md)
    AUDIT_CUT = "audit.cut", _("The audit log's events past their retention cut at a signed checkpoint")
    # staff-authz: consultation requests assigned to sales; sessions; new devices
    INQUIRY_ASSIGNED = "inquiry.assigned", _("Consultation request assigned to a staff member")
    STAFF_SESSION_EXPIRED = "staff.session_expired", _("Staff session ended: signed in for too long")
    STAFF_NEW_DEVICE = "staff.new_device", _("Staff signed in from a new device")
    RIGHTS_REFUSAL_REJECTED = (
        "rights.refusal_rejected",
        _("Proposed refusal of a rights request rejected by a second staff member"),
    )
    # monitoring: alerts over the audit log, and the security role's pages
    ALERT_RAISED = "monitoring.alert_raised", _("Security alert raised by a monitoring rule")
    ALERT_ACKNOWLEDGED = "monitoring.alert_acknowledged", _("Security alert acknowledged with a note")
    SECURITY_VIEWED = "monitoring.viewed", _("Security alerts or events viewed")
    RATE_LIMITED = "site.rate_limited", _("Requests refused by a rate limit (the first of a client's window)")
    CAPTCHA_FAILED = "site.captcha_failed", _("CAPTCHA answered wrongly, or with a used or expired challenge")
    # staff-admin: the administrator's staff page and time-limited grants
    STAFF_INVITED = "staff.invited", _("Staff account created and an enrolment link e-mailed")
    STAFF_ENROLLED = "staff.enrolled", _("Staff member set a password and an authenticator")
    STAFF_ENROLMENT_RESENT = "staff.enrolment_resent", _("A new enrolment link e-mailed to a staff member")
    STAFF_SUSPENDED = "staff.suspended", _("Staff account suspended")
    STAFF_REACTIVATED = "staff.reactivated", _("Staff account reactivated")
    STAFF_ROLE_CHANGED = "staff.role_changed", _("Staff member's role changed")
    STAFF_CHANGE_REFUSED = "staff.change_refused", _("Change to a staff account refused")
    GRANT_REQUESTED = "grant.requested", _("Time-limited access to personal data requested")
    GRANT_APPROVED = "grant.approved", _("Time-limited access to personal data approved")
    GRANT_DECLINED = "grant.declined", _("Time-limited access to personal data declined")
    GRANT_EXPIRED = "grant.expired", _("Time-limited access to personal data expired")
    GRANT_REFUSED = "grant.refused", _("Request or decision on time-limited access refused")
    # access-reviews: access-review campaigns and training attestations (issue 8 §3, §4)
    ACCESS_REVIEW_OPENED = "staff.review_opened", _("Access review opened")
    ACCESS_CONFIRMED = "staff.access_confirmed", _("Staff access confirmed in an access review")
    ACCESS_REVOKED = "staff.access_revoked", _("Staff access revoked in an access review")
    ACCESS_SUSPENDED = "staff.access_suspended", _("Staff access suspended: not reviewed by the deadline")
    ACCESS_REVIEW_SIGNED = "staff.review_signed", _("Access review completed and signed")
    ACCESS_REVIEW_EXPORTED = "staff.review_exported", _("Signed access review exported")
    TRAINING_RECORDED = "staff.training_recorded", _("Staff training recorded")
    TRAINING_NOTICE = "staff.training_notice", _("Staff told that their training attestation expires or expired")
    # visitor accounts (issue 9 §1)
    ACCOUNT_CREATED = "account.created", _("Visitor account opened")
    ACCOUNT_SIGN_UP_REPEATED = "account.sign_up_repeated", _("Sign-up with the address of an existing account")
    ACCOUNT_VERIFIED = "account.verified", _("Visitor account's e-mail address confirmed")
    ACCOUNT_GUARDIAN_CONSENTED = "account.guardian_consented", _("Guardian consented to a child's account")
    ACCOUNT_SIGNED_IN = "account.signed_in", _("Visitor signed in")
    ACCOUNT_SIGNED_OUT = "account.signed_out", _("Visitor signed out")
    ACCOUNT_PASSWORD_CHANGED = "account.password_changed", _("Visitor changed their password")
    ACCOUNT_RESET_ASKED = "account.reset_asked", _("Visitor asked for a password reset link")
    ACCOUNT_PASSWORD_RESET = "account.password_reset", _("Visitor reset their password by e-mailed link")
    ACCOUNT_MAIL_SENT = "account.mail_sent", _("E-mail sent to a visitor account's address")
    ACCOUNT_TOTP_ADDED = "account.totp_added", _("Visitor added an authenticator app")
    ACCOUNT_TOTP_REMOVED = "account.totp_removed", _("Visitor removed their authenticator app")
    ACCOUNT_NOTICE_DISMISSED = (
        "account.notice_dismissed",
        _("Visitor closed the notice of a policy change while signed in (kept closed for the account)"),
    )
    # incidents: the incident register, the regulator's clock and the notices (issue 10 §4, policy §五.6)
    INCIDENT_RECORDED = "incident.recorded", _("Security incident recorded")
    INCIDENT_UPDATED = "incident.updated", _("Security incident's details changed")
    INCIDENT_PLAN_ACTIVATED = "incident.plan_activated", _("Incident emergency plan activated")
    INCIDENT_CONTAINED = "incident.contained", _("Security incident contained")
    INCIDENT_REPORTED = "incident.reported", _("Security incident reported to the regulator")
    INCIDENT_NOTICE_SAVED = "incident.notice_saved", _("Text of an incident notice saved")
    INCIDENT_NOTICES_QUEUED = "incident.notices_queued", _("Incident notices queued for the persons affected")
    INCIDENT_NOTICE_SENT = "incident.notice_sent", _("Incident notice e-mailed to a person affected")
    INCIDENT_NOTICE_UNDELIVERABLE = (
        "incident.notice_undeliverable",
        _("Incident notice not sent: no address held, the data erased, or no guardian address"),
    )
    INCIDENT_NOT_NOTIFYING = (
        "incident.not_notifying",
        _("Decided not to notify the persons affected, with a justification"),
    )
    INCIDENT_PUBLISHED = "incident.published", _("Public notice of an incident published")
    INCIDENT_CLOSED = "incident.closed", _("Security incident closed")
    INCIDENT_ACTION_REFUSED = "incident.action_refused", _("Action on a security incident refused")
    INCIDENT_DEADLINE_ALERT = (
        "incident.deadline_alert",
        _("Alert: an incident report to the regulator is due or overdue"),
    )
    # children: children's protection (policy §八)
    GUARDIAN_ASKED = "children.guardian_asked", _("A guardian's consent for a child asked for by e-mail")
    GUARDIAN_CONSENTED = "children.guardian_consented", _("A guardian gave separate consent for a child")
    GUARDIAN_DECLINED = "children.guardian_declined", _("A guardian refused consent for a child")
    GUARDIAN_REQUEST_EXPIRED = (
        "children.guardian_request_expired",
        _("A guardian's consent unanswered for 7 days: the child's pending data erased"),
    )
    CHILD_DATA_FLAGGED = (
        "children.flagged",
        _("A child's data flagged by staff: no guardian's consent"),
    )
    CHILD_DATA_OPENED = "children.opened", _("A child's data opened by staff")
    # secevents: refusals by the public site's risk rules, and their human review (PIPL 24)
    CLIENT_BLOCKED = (
        "security.client_blocked",
        _("A client refused by a risk rule (too many submissions or wrong CAPTCHAs)"),
    )
    REFUSAL_REVIEW_REQUESTED = "security.review_requested", _("A person asked for a refusal to be reviewed")
    REFUSAL_LIFTED = "security.refusal_lifted", _("A refusal lifted by the security role, with a reason")
    REFUSAL_UPHELD = "security.refusal_upheld", _("A refusal upheld by the security role, with a reason")
    # cessation: the site's cessation (policy §三(二) para 2)
    CESSATION_ANNOUNCED = "cessation.announced", _("The website's cessation announced, with its date")
    CESSATION_WITHDRAWN = "cessation.withdrawn", _("The announced cessation of the website withdrawn")
    CESSATION_NOTICES_ADDED = (
        "cessation.notices_added",
        _("People reachable since the announcement added to its notice"),
    )
    CESSATION_NOTICE_SENT = "cessation.notice_sent", _("Notice of the website's cessation e-mailed to a person")
    CESSATION_NOTICES_RETRIED = "cessation.notices_retried", _("Unconfirmed cessation notices made sendable again")
    CESSATION_STARTED = "cessation.started", _("The website's cessation carried out: erasure started")
    CESSATION_BATCH_ERASED = "cessation.batch_erased", _("The website's cessation: a batch of people erased")
    CESSATION_EXECUTED = "cessation.executed", _("The website's cessation carried out: every person erased")
    POLICY_PUBLISHED = "policy.published", _("Privacy policy version published")
    POLICY_NOTICE_SENT = "policy.notice_sent", _("Person told directly of a material change to the privacy policy")
    # downloads: the resources library (issue 9 §3) and the visitor's histories (§3, §4)
    DOWNLOAD_PUBLISHED = "downloads.published", _("Downloadable resource published")
    DOWNLOAD_EDITED = "downloads.edited", _("Downloadable resource's titles or descriptions changed")
    DOWNLOAD_WITHDRAWN = "downloads.withdrawn", _("Downloadable resource withdrawn (its file deleted)")
    HISTORY_CLEARED = "downloads.history_cleared", _("A visitor cleared their download or browsing history")


class ActorKind(models.TextChoices):
    STAFF = "staff", _("Staff")
    VISITOR = "visitor", _("Visitor (the person themself)")
    SYSTEM = "system", _("System")


class AuditEvent(models.Model):
    # NULL until sealed (see the module docstring); order by id, which exists at insert.
    seq = models.BigIntegerField(unique=True, null=True, blank=True)
    occurred_at = models.DateTimeField(db_index=True)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    person = models.ForeignKey(  # indexed by audit_person_id_idx (person, id), which it leads
        "people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events", db_index=False
    )
    purpose = models.CharField(max_length=40, blank=True)
    fields = models.JSONField(default=list, blank=True)
    # Staff type reveal reasons here (free text, declared as its own category): bounded.
    reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    digest = models.CharField(max_length=64)
    # NULL, not "", until sealed: unique allows many NULLs, and "not sealed" differs from any hash.
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001  # see above
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["person", "id"], name="audit_person_id_idx")]

    def __str__(self) -> str:
        return f"#{self.seq if self.seq is not None else f'(id {self.pk})'} {self.event_type}"

    def content(self) -> dict[str, Any]:
        """What ``digest`` covers: every column but the chain's own (id, seq, hashes, digest)."""
        return dict(zip(CONTENT_ATTRS, (getattr(self, name) for name in CONTENT_ATTRS), strict=True))

    def content_digest(self) -> str:
        """The digest this event's content should carry (as loaded through the ORM)."""
        return digest_of(tuple(getattr(self, name) for name in CONTENT_ATTRS))


# The content fields, in the order ``digest_of`` takes them (the hashed text of the chain and the
# append's columns follow it too), and the same as ``values_list()`` names them.
CONTENT_FIELDS = (
    "occurred_at",
    "event_type",
    "actor_kind",
    "actor",
    "person",
    "purpose",
    "fields",
    "reason",
    "extra",
)
_CONCRETE = {f.name: f.attname for f in AuditEvent._meta.concrete_fields}
CONTENT_ATTRS = tuple(_CONCRETE[name] for name in CONTENT_FIELDS)


def column_of(name: str) -> str:
    """The database column of an :class:`AuditEvent` field (raw statements are built from these)."""
    field = AuditEvent._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise LookupError(f"AuditEvent.{name} is not a column")
    return field.column


def digest_of(values: tuple[Any, ...]) -> str:
    """The digest of content loaded through the ORM (``CONTENT_ATTRS``, in order)."""
    occurred_at, event_type, actor_kind, actor, person, purpose, fields, reason, extra = values
    return content_digest(
        (
            occurred_at.isoformat(),
            event_type,
            actor_kind,
            actor,
            str(person) if person is not None else None,
            purpose,
            canonical_json(fields),
            reason,
            canonical_json(extra),
        )
    )


# Built once: json.dumps() with arguments builds a new encoder on every call.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_framed = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8 as is (what SQLite stores)."""
    return _canonical(value)


def content_digest(parts: Sequence[Any]) -> str:
    """SHA-256 of an event's content, computed at insert and again by the sealer and ``verify``.

    ``parts``: occurred_at (ISO 8601), event_type, actor_kind, actor id, person id (text),
    purpose, fields (canonical JSON), reason, extra (canonical JSON).  They are framed as one
    JSON array, so that no part can borrow from its neighbour, and JSON columns enter as their
    canonical text, so that a value read back (from PostgreSQL's jsonb, which reorders keys)
    gives the same digest as the value written."""
    return hashlib.sha256(_framed(list(parts)).encode("utf-8")).hexdigest()


class AuditChainHead(models.Model):
    """The last sealed event's seq and hash, in one row that only the sealer locks (never a request)."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class AuditCheckpoint(models.Model):
    """A digest of a run of sealed events, taken once they were checked one by one: ``verify``
    then checks the run with one hash of its stored columns instead of one hash per event.

    It adds no trust of its own: a run whose checkpoint is missing is checked event by event as
    before, and a run that no longer matches its checkpoint is walked event by event to name the
    event; if every event still follows from its neighbours (the chain rewritten with its hashes
    recomputed), the checkpoint is what tells, and the run's first event is named."""

    first_seq = models.BigIntegerField(unique=True)
    last_seq = models.BigIntegerField()
    digest = models.CharField(max_length=64)
    last_hash = models.CharField(max_length=64)  # the hash of the event at last_seq
    signature = models.TextField()  # Ed25519 over the four above (piwarden.audit.signing), base64
    made_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["first_seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.first_seq}–#{self.last_seq}"


class AuditCut(models.Model):
    """The audit log cut at a checkpoint: the events with ``seq <= cut_seq`` are past their
    retention and deleted (by the retention sweep, in batches), and ``verify`` walks the chain from
    ``cut_seq + 1``, whose ``prev_hash`` must be ``cut_hash``.

    One row per cut, never changed or deleted (``appendonly``'s triggers, which allow a DELETE of
    an event only at or below the greatest ``cut_seq``).  ``signature``: Ed25519 of the audit
    signing key over the other columns (``piwarden.audit.cut.document``), so that someone who can
    write the database but not sign cannot insert a cut to hide the events they deleted: ``verify``
    names such a cut as a break.  Appended to the checkpoints' export file too."""

    cut_seq = models.BigIntegerField(unique=True)  # the last_seq of the checkpoint cut at
    cut_hash = models.CharField(max_length=64)  # that checkpoint's last_hash
    checkpoint_first_seq = models.BigIntegerField()
    checkpoint_digest = models.CharField(max_length=64)
    made_at = models.DateTimeField()  # signed: set by the write path, to the second
    signature = models.TextField()

    class Meta:
        ordering = ["cut_seq"]

    def __str__(self) -> str:
        return f"cut at #{self.cut_seq}"
