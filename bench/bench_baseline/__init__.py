"""The bare comparison arm of `make bench`: the consultation fields, validated and stored in plaintext.

Installed only when ``PIWARDEN_BENCH=on`` (``bench/`` on ``sys.path``); never part of the site.
"""
