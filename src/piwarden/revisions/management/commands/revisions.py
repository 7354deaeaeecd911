"""piwarden revisions publish (also ``piwarden policy publish``)"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.policy.declaration import DeclarationError
from piwarden.policy.models import MaterialKind
from piwarden.policy.versions import publish_arguments
from piwarden.revisions.actions import PublishRefused, publish_version


class Command(BaseCommand):
    help = (
        "publish: keep the declaration and texts in force as the next policy version, compared with the one "
        "before and classified by the material kinds of §十; a material change needs its notice in both "
        "languages, is announced on every page and e-mailed once to everyone whose contact details are held."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["publish"])
        publish_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.publish(options)

    def publish(self, options: dict[str, Any]) -> None:
        notices = {}
        for language in ("zh", "en"):
            path = options[f"notice_{language}"]
            try:
                notices[language] = path.read_text(encoding="utf-8") if path is not None else ""
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"--notice-{language} {path}: cannot be read: {exc}") from None
        try:
            published = publish_version(
                effective=options["effective"],
                declared_kinds=[MaterialKind(k) for k in options["kind"]],
                notice_zh=notices["zh"],
                notice_en=notices["en"],
                explicit_consent_will_be_sought=options["explicit_consent_will_be_sought"],
            )
        except (PublishRefused, DeclarationError) as exc:
            raise CommandError(f"not published: {exc}") from None
        version = published.version
        if not published.created:
            self.stdout.write(f"version {version.number} ({version.label}) is already in force; nothing published")
            return
        comparison = published.comparison
        if comparison is not None:
            for section in comparison.sections:
                for line in section.lines:
                    change = f" ({line.before} -> {line.after})" if line.before or line.after else ""
                    self.stdout.write(f"{section.id}: {line.what}: {line.item}{change}")
            if comparison.stale_purposes:
                self.stdout.write(
                    "consents to these purposes are now stale and will be asked again: "
                    + ", ".join(comparison.stale_purposes)
                )
        kinds = ", ".join(version.kinds) or "none (not a material change)"
        self.stdout.write(
            f"published version {version.number} ({version.label}), effective {version.effective.isoformat()}, "
            f"digest {version.digest[:12]}; material kinds: {kinds}"
        )
        if version.material:
            self.stdout.write("the notice is shown on every page; the direct notices are queued for the task worker")
