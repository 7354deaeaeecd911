"""piwarden staff review open|enforce|show|verify | training record|due|remind | periodic [--every SECONDS]"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from piwarden.periodic import repeat
from piwarden.staff import actions, reviews, training
from piwarden.staff.models import AccessReview, AccessReviewLine
from piwarden.staff.permissions import declared_role
from piwarden.staff.training import TrainingLapse, training_lapse


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)", returncode=2) from None


def _review(review_id: int | None) -> AccessReview:
    found = AccessReview.objects.filter(pk=review_id).first() if review_id else AccessReview.objects.first()
    if found is None:
        raise CommandError("no such access review" if review_id else "no access review yet", returncode=2)
    return found


class Command(BaseCommand):
    help = (
        "Staff governance (policy §五.3, §五.5).  review open: open an access-review campaign (--if-due: only "
        "when the last is a period old).  review enforce: suspend access still unreviewed past the deadline, "
        "then sign the campaign.  review show: a campaign's lines and decisions.  review verify: check a "
        "campaign's signature (or an exported file's).  training record: record a completed course.  training "
        "due: whose attestation is missing, expiring or expired.  training remind: send the expiry notices.  "
        "periodic: all the periodic work (`piwarden serve` runs it hourly)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        groups = parser.add_subparsers(dest="group", required=True, metavar="{review,training,periodic}")
        review = groups.add_parser("review", help="access-review campaigns")
        steps = review.add_subparsers(dest="step", required=True, metavar="{open,enforce,show,verify}")
        opening = steps.add_parser("open", help="open a campaign now")
        opening.add_argument("--if-due", action="store_true", help="only when the last campaign is a period old")
        steps.add_parser("enforce", help="suspend unreviewed access past the deadline and sign")
        show = steps.add_parser("show", help="a campaign's lines (the latest without an id)")
        show.add_argument("id", nargs="?", type=int)
        show.add_argument("--export", metavar="FILE", help="also write the signed review to FILE (audited)")
        verify = steps.add_parser("verify", help="check a campaign's signature, or an exported file's")
        verify.add_argument("id", nargs="?", type=int)
        verify.add_argument("--file", metavar="FILE", help="an exported review (no database needed)")
        verify.add_argument("--public-key", metavar="FILE", help="the audit public keyset (default: the keys dir's)")
        train = groups.add_parser("training", help="training attestations")
        tsteps = train.add_subparsers(dest="step", required=True, metavar="{record,due,remind}")
        record = tsteps.add_parser("record", help="record a course a staff member completed")
        record.add_argument("username")
        record.add_argument("--course", required=True)
        record.add_argument("--completed-on", required=True, metavar="YYYY-MM-DD")
        tsteps.add_parser("due", help="whose attestation is missing, expiring or expired")
        remind = tsteps.add_parser("remind", help="send the expiry notices that are due")
        remind.add_argument("--today", metavar="YYYY-MM-DD", help="count as if today were this day")
        periodic = groups.add_parser("periodic", help="open a due campaign, enforce deadlines, send notices")
        periodic.add_argument("--every", type=int, metavar="SECONDS", help="run now and then every SECONDS")

    def handle(self, *args: Any, **options: Any) -> None:
        group, step = options["group"], options.get("step")
        if group == "periodic":
            self.periodic(options["every"])
        elif group == "review":
            getattr(self, f"review_{step}")(options)
        else:
            getattr(self, f"training_{step}")(options)

    # --- reviews --------------------------------------------------------------------------------

    def review_open(self, options: dict[str, Any]) -> None:
        if options["if_due"]:
            opened = actions.open_review_if_due()
            if opened is None:
                self.stdout.write("No access review is due (or one is open).")
                return
        else:
            try:
                opened = actions.open_access_review()
            except actions.ReviewRefused as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Opened access review {opened.pk}: {opened.lines.count()} lines, "
            f"deadline {opened.deadline:%Y-%m-%d %H:%M} UTC."
        )

    def review_enforce(self, options: dict[str, Any]) -> None:
        done = actions.enforce_review_deadlines()
        if not done:
            self.stdout.write("No open access review is past its deadline.")
        for review_id, suspended in done.items():
            self.stdout.write(f"Access review {review_id}: suspended {suspended} unreviewed; completed.")
        for review_id in actions.sign_completed_reviews():
            self.stdout.write(f"Access review {review_id}: signed.")

    def review_show(self, options: dict[str, Any]) -> None:
        review = _review(options["id"])
        if review.signature:
            state = "signed"
        elif review.is_complete:
            state = "complete, not signed yet: the signing key is unavailable"
        else:
            state = f"open, {reviews.pending(review)} to review"
        self.stdout.write(
            f"Access review {review.pk} ({state}); opened {review.opened_at:%Y-%m-%d %H:%M}, reveals from "
            f"{review.period_start:%Y-%m-%d} to {review.period_end:%Y-%m-%d}, deadline {review.deadline:%Y-%m-%d %H:%M}"
        )
        for line in AccessReviewLine.objects.filter(review=review).select_related("staff", "decided_by"):
            counts = ", ".join(f"{r['category']}/{r['purpose']}: {r['reveals']}" for r in line.reveals) or "no reveals"
            by = f" by {line.decided_by.username}" if line.decided_by else ""
            roles = ",".join(line.roles) or "-"
            self.stdout.write(f"  {line.staff.username:20} {roles:24} {counts}  [{line.decision}{by}]")
        if options["export"]:
            if not review.signature:
                raise CommandError("the review is not signed yet: nothing to export")
            Path(options["export"]).write_text(json.dumps(reviews.export_of(review), ensure_ascii=False) + "\n")
            actions.record_review_export(review, by=None)
            self.stdout.write(f"Wrote the signed review to {options['export']}.")

    def review_verify(self, options: dict[str, Any]) -> None:
        key = Path(options["public_key"]) if options["public_key"] else None
        if options["file"]:
            result = reviews.verify_export(Path(options["file"]).read_text(encoding="utf-8"), key)
            what = options["file"]
        else:
            review = _review(options["id"])
            result = reviews.verify_review(review, key)
            what = f"access review {review.pk}"
        if not result.ok:
            raise CommandError(f"{what}: NOT verified: {result.problem}")
        self.stdout.write(f"{what}: the signature verifies.")

    # --- training -------------------------------------------------------------------------------

    def training_record(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(username=options["username"], is_staff=True).first()
        if user is None:
            raise CommandError(f"no staff account {options['username']!r}", returncode=2)
        try:
            record = actions.record_training(
                user, course=options["course"], completed_on=_date(options["completed_on"]), recorded_by=None
            )
        except actions.ReviewRefused as exc:
            raise CommandError(str(exc), returncode=2) from None
        ends = training.expires_on(record.completed_on)
        self.stdout.write(f"Recorded for {user.username}: current until {ends - datetime.timedelta(days=1)}.")

    def training_due(self, options: dict[str, Any]) -> None:
        for user in User.objects.filter(is_staff=True, is_active=True).order_by("username"):
            role = declared_role(user)
            if not training.needs_training(role):
                continue
            lapse: TrainingLapse | None = training_lapse(user, role)
            latest = training.latest_training(user)
            if lapse is None and latest is not None:
                state = f"current, expires {training.expires_on(latest.completed_on)}"
            elif lapse is not None and lapse.expired_on is not None:
                state = f"expired {lapse.expired_on}: reveals suspended"
            else:
                state = "none recorded: reveals suspended"
            self.stdout.write(f"{user.username:20} {state}")

    def training_remind(self, options: dict[str, Any]) -> None:
        sent = actions.send_training_notices(_date(options["today"]) if options["today"] else None)
        self.stdout.write(f"Queued {len(sent)} training notice(s).")

    # --- periodic -------------------------------------------------------------------------------

    def periodic(self, every: int | None) -> None:
        def job() -> tuple[AccessReview | None, dict[int, int], list[int]]:
            opened = actions.open_review_if_due()
            enforced = actions.enforce_review_deadlines()
            actions.sign_completed_reviews()
            return opened, enforced, actions.send_training_notices()

        def report(done: tuple[AccessReview | None, dict[int, int], list[int]]) -> str:
            opened, enforced, notices = done
            return (
                f"{timezone.now():%Y-%m-%d %H:%M} opened {opened.pk if opened else 'none'}; "
                f"enforced {sorted(enforced) or 'none'}; {len(notices)} training notice(s)."
            )

        repeat("staff periodic", every, job, report, any, stdout=self.stdout, stderr=self.stderr)
