"""Per-client rate limits for every interface: the counter model, :func:`limiter.hit` and the
:func:`decorators.rate_limit` view decorator."""
