from django.apps import AppConfig


class RevisionsConfig(AppConfig):
    """Publishing a new version of the privacy policy and telling people of a material change (policy §十).

    Apart from ``piwarden.policy``, which knows the declaration alone (its versions included) and no
    feature: publishing writes the audit log, and the notices read people's contact details through
    the processing gate.
    """

    name = "piwarden.revisions"
    label = "revisions"
    verbose_name = "Policy revisions and their notices"
