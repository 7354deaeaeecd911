"""Write paths of the policy's versions: publishing one (the direct notices it queues are revisions.mail's)."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.policy.changes import Comparison, compare
from piwarden.policy.declaration import Declaration, load_declaration
from piwarden.policy.models import MaterialKind, PolicyVersion
from piwarden.policy.versions import Snapshot, current_snapshot, declaration_of, forget
from piwarden.revisions.tasks import notify_policy_change
from piwarden.rights.clock import PRC_TIME


class PublishRefused(Exception):
    """The version cannot be published as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Published:
    version: PolicyVersion
    created: bool
    comparison: Comparison | None = None


def publish_version(
    *,
    effective: datetime.date | None = None,
    declared_kinds: Collection[MaterialKind] = (),
    notice_zh: str = "",
    notice_en: str = "",
    explicit_consent_will_be_sought: bool = False,
    snapshot: Snapshot | None = None,
) -> Published:
    """Publish the declaration and texts in force as the next version (CHG-01, CHG-02).

    The first version of an empty history is the declaration as it stands (nothing to compare
    with). A later one is compared with the latest: the material kinds of §十 are those the
    comparison derives plus ``declared_kinds``; a material version needs its notice in both
    languages, a version that reduces rights needs ``explicit_consent_will_be_sought``, and its
    ``policy.version`` label and effective date must be new.  Publishing the version already in
    force again changes nothing.  A material version queues the direct notices on commit.
    """
    snapshot = snapshot or current_snapshot()
    declaration = load_declaration()
    if snapshot.digest != declaration.digest:
        raise PublishRefused(
            "the policy files changed since this process read them: run the command again "
            "(and restart the site so that it enforces what is published)"
        )
    with transaction.atomic(durable=True):
        latest = PolicyVersion.objects.select_for_update().order_by("-number").first()
        if latest is not None and latest.digest == declaration.digest:
            return Published(latest, created=False)
        if latest is None:
            version, comparison = _first(snapshot, declaration, effective), None
        else:
            comparison = compare(declaration_of(latest), declaration)
            kinds = sorted(set(comparison.kinds) | set(declared_kinds), key=list(MaterialKind).index)
            _check(
                latest,
                declaration,
                comparison,
                kinds=kinds,
                effective=effective,
                notices=(notice_zh, notice_en),
                explicit_consent=explicit_consent_will_be_sought,
            )
            version = PolicyVersion.objects.create(
                number=latest.number + 1,
                label=declaration.version,
                effective=declaration.effective,
                digest=declaration.digest,
                declaration=snapshot.declaration,
                texts=snapshot.texts,
                published_at=timezone.now(),
                kinds=[k.value for k in kinds],
                declared_kinds=[k.value for k in MaterialKind if k in set(declared_kinds)],
                notice_zh=notice_zh.strip() if kinds else "",
                notice_en=notice_en.strip() if kinds else "",
                reduces_rights=bool(comparison.reductions),
            )
        record_event(
            EventType.POLICY_PUBLISHED,
            actor_kind=ActorKind.SYSTEM,
            extra={
                "version": version.number,
                "label": version.label,
                "effective": version.effective.isoformat(),
                "digest": version.digest,
                "kinds": version.kinds,
                "declared_kinds": version.declared_kinds,
                "reduces_rights": version.reduces_rights,
                "stale_consents": list(comparison.stale_purposes) if comparison else [],
            },
        )
        if version.material:
            transaction.on_commit(lambda: _queue_notices(version))
    forget()
    return Published(version, created=True, comparison=comparison)


def ensure_published() -> str | None:
    """Publish the declaration in force as version 1 when no version is kept yet (a new installation,
    or one from before versions were kept); otherwise say so if it differs from the latest version."""
    latest = PolicyVersion.objects.order_by("-number").first()
    if latest is None:
        publish_version()
        return None
    if latest.digest != load_declaration().digest:
        return (
            f"the privacy policy in force is not published: version {latest.number} ({latest.label}) is the "
            "latest kept; run `piwarden policy publish` (with its notices if the change is material)"
        )
    return None


def _first(snapshot: Snapshot, declaration: Declaration, effective: datetime.date | None) -> PolicyVersion:
    if effective is not None and effective != declaration.effective:
        raise PublishRefused(_effective_differs(declaration, effective))
    return PolicyVersion.objects.create(
        number=1,
        label=declaration.version,
        effective=declaration.effective,
        digest=declaration.digest,
        declaration=snapshot.declaration,
        texts=snapshot.texts,
        published_at=timezone.now(),
    )


def _effective_differs(declaration: Declaration, effective: datetime.date) -> str:
    return (
        f"--effective {effective.isoformat()} differs from policy.effective = {declaration.effective.isoformat()} "
        "in declaration.toml, which the privacy page shows: set the date there (or leave out --effective)"
    )


def _check(
    latest: PolicyVersion,
    declaration: Declaration,
    comparison: Comparison,
    *,
    kinds: list[MaterialKind],
    effective: datetime.date | None,
    notices: tuple[str, str],
    explicit_consent: bool,
) -> None:
    if declaration.version == latest.label:
        raise PublishRefused(
            f"the declaration changed but policy.version still says {latest.label!r}, the label of version "
            f"{latest.number}: give the new version its own label in declaration.toml"
        )
    if effective is not None and effective != declaration.effective:
        raise PublishRefused(_effective_differs(declaration, effective))
    today = timezone.now().astimezone(PRC_TIME).date()
    if declaration.effective < today or declaration.effective < latest.effective:
        raise PublishRefused(
            f"policy.effective = {declaration.effective.isoformat()} in declaration.toml has passed (today is "
            f"{today.isoformat()} in China, version {latest.number} took effect on {latest.effective.isoformat()}): "
            "a new version takes effect today or later; set the date there"
        )
    if comparison.reductions and not explicit_consent:
        raise PublishRefused(
            "this version reduces people's rights ("
            + "; ".join(comparison.reductions)
            + "). Rights are never reduced without the person's explicit consent (policy §十): publish it only "
            "with --explicit-consent-will-be-sought, once that consent will be asked for"
        )
    if kinds and not all(n.strip() for n in notices):
        names = ", ".join(k.value for k in kinds)
        raise PublishRefused(
            f"this is a material change ({names}): it is announced on every page and e-mailed to everyone whose "
            "contact details we hold, so it needs its notice in both languages: --notice-zh FILE --notice-en FILE"
        )


def _queue_notices(version: PolicyVersion) -> None:
    notify_policy_change.enqueue(str(version.pk))
