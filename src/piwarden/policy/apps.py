from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "piwarden.policy"
    label = "policy"
    verbose_name = "Privacy policy"

    def ready(self) -> None:
        # Refuse to start on a malformed or inconsistent declaration: better no
        # site than a site collecting data under a policy nobody can read.
        from piwarden.policy.declaration import load_declaration  # noqa: PLC0415  # apps load before models; importing at module level would read settings too early

        load_declaration()
        from piwarden.policy import checks  # noqa: F401, PLC0415  # registers the system checks
