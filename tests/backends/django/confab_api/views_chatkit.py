"""Seed 002: ChatKit-shaped sessions. A session's `client_secret` is a chat connection token;
it can be exchanged for a new one until 5 minutes after it expired. Both routes share one rate
limit per user, answered with `Retry-After` as an epoch timestamp in milliseconds (what seed
002's rate limiter sends)."""

import logging

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from . import stats
from .base import CountingAPIView, chatkit_limit, string_fields
from .signing import chat_expiry, now, signer

log = logging.getLogger("confab.chatkit")


def _rate_limited(retry_at_ms):
    stats.incr("chatkit_rate_limited")
    log.info("chatkit refused: rate limited until %d ms", retry_at_ms)
    return Response({"error": "rate_limited"}, status=429, headers={"Retry-After": str(retry_at_ms)})


def _session(user, access_token=None):
    issued_at = now()
    expires_at = chat_expiry(issued_at, access_token)
    return {"client_secret": signer().mint(user, issued_at, expires_at), "expires_at": expires_at}


class SessionView(CountingAPIView):
    """POST with `Authorization: Bearer <SimpleJWT access token>` -> {client_secret, expires_at}."""

    permission_classes = [IsAuthenticated]

    def post(self, request):
        retry_at = chatkit_limit(request, request.user.get_username())
        if retry_at is not None:
            return _rate_limited(retry_at)
        body = _session(request.user, request.auth)
        stats.incr("chatkit_sessions")
        log.info("chatkit session for %s", request.user.get_username())
        return Response(body)


class RefreshView(CountingAPIView):
    """POST {"client_secret"} -> a new {client_secret, expires_at} for the same user."""

    authentication_classes = []
    permission_classes = [AllowAny]
    refused_counter = "chatkit_refresh_refused"

    def post(self, request):
        values, problems = string_fields(request, "client_secret")
        if problems:
            return self._refuse(400, "invalid_request", "client_secret is required.")
        try:
            claims = signer().verify(values["client_secret"], leeway=settings.CHATKIT_REFRESH_GRACE_SECS)
        except jwt.InvalidTokenError as e:
            return self._refuse(401, "invalid_client_secret", f"The client secret is not valid ({e}).")
        user = get_user_model().objects.filter(username=claims["sub"], is_active=True).first()
        if user is None:
            return self._refuse(401, "invalid_client_secret", "The client secret's user is unknown or inactive.")
        retry_at = chatkit_limit(request, user.get_username())
        if retry_at is not None:
            return _rate_limited(retry_at)
        body = _session(user)
        stats.incr("chatkit_refresh_ok")
        log.info("chatkit refresh ok for %s", user.get_username())
        return Response(body)

    def _refuse(self, status, code, detail):
        stats.incr("chatkit_refresh_refused")
        log.info("chatkit refresh refused: %s", detail)
        return Response({"error": code, "detail": detail}, status=status)
