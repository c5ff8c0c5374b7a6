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
