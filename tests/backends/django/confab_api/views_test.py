"""Test routes (only with DJANGO_TEST_ROUTES=1): counters and a reset of them and of the
rate-limit cache."""

from django.core.cache import cache
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from . import stats


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def stats_view(request):
    return Response(stats.snapshot())


@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def reset(request):
    stats.reset()
    cache.clear()
    return Response(status=204)


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def live_refresh_tokens(request):
    """How many refresh tokens of `?username=` the backend would still accept: issued
    (SimpleJWT's OutstandingToken), not blacklisted, not expired. Lets a test see that a
    sign-out blacklisted the app's token, or that a rotation left exactly one, without ever
    reading a token."""
    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    username = request.query_params.get("username", "")
    live = (
        OutstandingToken.objects.filter(user__username=username, expires_at__gt=timezone.now())
        .filter(blacklistedtoken__isnull=True)
        .count()
    )
    return Response({"username": username, "live": live})
