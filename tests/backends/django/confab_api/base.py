"""Shared view pieces: counting refusals, reading JSON string fields, the rate limits."""

import logging
import time

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.views import APIView

from . import stats
from .errors import describe

log = logging.getLogger("confab.api")


class CountingAPIView(APIView):
    """Counts every exception-borne refusal (authentication, permission, parse errors) of the
    view into `refused_counter` and logs its status and code."""

    refused_counter = None

    def handle_exception(self, exc):
        if self.refused_counter:
            stats.incr(self.refused_counter)
        log.info("%s refused: %s", self.__class__.__name__, describe(exc))
        return super().handle_exception(exc)


def string_fields(request, *names):
    """`(values, problems)`: the named string fields of a JSON object body, and DRF-style
    messages for each missing, non-string or blank one."""
    data = request.data if isinstance(request.data, dict) else {}
    values, problems = {}, {}
    for name in names:
        value = data.get(name)
        if value is None:
            problems[name] = ["This field is required."]
        elif not isinstance(value, str):
            problems[name] = ["Not a valid string."]
        elif not value.strip():
            problems[name] = ["This field may not be blank."]
        else:
            values[name] = value
    return values, problems


def _limit(request, group, key, rate):
    """Counts this request against `rate` (django-ratelimit: fixed windows per key); returns the
    whole seconds until the window ends (at least 1) when the request is over the limit, else
    None."""
    usage = get_usage(request, group=group, key=key, rate=rate, method="POST", increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    return max(int(usage["time_left"]), 1)


def login_limit(request):
    """Seconds to wait when this client IP is over DJANGO_LOGIN_RATE, else None."""
    return _limit(request, "confab.login", "ip", settings.LOGIN_RATE)


def chatkit_limit(request, username):
    """Epoch milliseconds at which `username` may ask again when over DJANGO_CHATKIT_RATE,
    else None."""
    wait = _limit(request, "confab.chatkit", lambda _group, _request: f"user:{username}", settings.CHATKIT_RATE)
    if wait is None:
        return None
    return (int(time.time()) + wait) * 1000
