"""Seed 003: a ChatSDK-shaped token service. Opaque, rotating refresh tokens in families kept in
the database (models.py); a rotated token presented again revokes its whole family."""

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from . import stats
from .base import CountingAPIView, string_fields
from .errors import error
from .models import ChatSdkFamily, ChatSdkRefreshToken
from .signing import chat_expiry, now, signer

log = logging.getLogger("confab.chatsdk")


def _hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _issue(family, user, access_token=None):
    """A new refresh token in `family` and a chat token: the ChatSDK triple."""
    refresh = secrets.token_urlsafe(32)
    ChatSdkRefreshToken.objects.create(
        family=family,
        token_hash=_hash(refresh),
        expires_at=timezone.now() + timedelta(seconds=settings.CHATSDK_REFRESH_TTL_SECS),
    )
    issued_at = now()
    expires_at = chat_expiry(issued_at, access_token)
    return {
        "accessToken": signer().mint(user, issued_at, expires_at),
        "refreshToken": refresh,
        "expiresAt": expires_at * 1000,
    }


def _family_tag(family):
    """A short id for the log (the family id is not a credential; the tokens are never logged)."""
    return str(family.id)[:8]


class TokenView(CountingAPIView):
    """POST with `Authorization: Bearer <SimpleJWT access token>` -> a new family's triple."""

    permission_classes = [IsAuthenticated]

    def post(self, request):
        with transaction.atomic():
            family = ChatSdkFamily.objects.create(user=request.user)
            body = _issue(family, request.user, request.auth)
        stats.incr("chatsdk_tokens")
        log.info("chatsdk family %s started for %s", _family_tag(family), request.user.get_username())
        return Response(body)


class RefreshView(CountingAPIView):
    """POST {"refreshToken"} -> a new triple; the presented token is rotated out."""

    authentication_classes = []
    permission_classes = [AllowAny]
    refused_counter = "chatsdk_refresh_refused"

    def post(self, request):
        values, problems = string_fields(request, "refreshToken")
        if problems:
            stats.incr("chatsdk_refresh_refused")
            return error(400, "invalid_request", "refreshToken is required.", fields=problems)

        with transaction.atomic():
            token = (
                ChatSdkRefreshToken.objects.select_related("family", "family__user")
                .filter(token_hash=_hash(values["refreshToken"]))
                .first()
            )
            if token is None:
                return self._refuse("token_not_valid", "Unknown refresh token.", "unknown token")
            family = token.family
            if family.revoked_at is not None:
                return self._refuse(
                    "token_revoked",
                    "This refresh token has been revoked.",
                    f"family {_family_tag(family)} revoked ({family.revoked_reason})",
                )
            stamp = timezone.now()
            if token.expires_at <= stamp:
                return self._refuse("token_expired", "This refresh token has expired.", "expired")
            user = family.user
            if not user.is_active:
                return self._refuse("account_inactive", "This account is inactive.", "inactive account", 403)
            # Only one request can rotate a token out; any other presentation of it is reuse
            # (a rotated token, or one rotated by a concurrent request just now).
            rotated = ChatSdkRefreshToken.objects.filter(pk=token.pk, rotated_at__isnull=True).update(
                rotated_at=stamp
            )
            if not rotated:
                family.revoked_at = stamp
                family.revoked_reason = "reuse"
                family.save(update_fields=["revoked_at", "revoked_reason"])
                stats.incr("chatsdk_reuse_events")
                log.warning("chatsdk refresh token reuse: family %s revoked", _family_tag(family))
                return self._refuse(
                    "token_reused", "This refresh token was already used; its session is revoked.", None
                )
            body = _issue(family, user)
        stats.incr("chatsdk_refresh_ok")
        log.info("chatsdk refresh ok: family %s (%s) rotated", _family_tag(family), user.get_username())
        return Response(body)

    def _refuse(self, code, detail, reason, status=401):
        stats.incr("chatsdk_refresh_refused")
        if reason:
            log.info("chatsdk refresh refused: %s", reason)
        return error(status, code, detail)


class LogoutView(CountingAPIView):
    """POST {"refreshToken"} -> 204; the token's family is revoked (unknown tokens: 204 too)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        values, problems = string_fields(request, "refreshToken")
        if problems:
            return error(400, "invalid_request", "refreshToken is required.", fields=problems)
        with transaction.atomic():
            token = (
                ChatSdkRefreshToken.objects.select_related("family")
                .filter(token_hash=_hash(values["refreshToken"]))
                .first()
            )
            if token is not None and token.family.revoked_at is None:
                token.family.revoked_at = timezone.now()
                token.family.revoked_reason = "logout"
                token.family.save(update_fields=["revoked_at", "revoked_reason"])
                log.info("chatsdk logout: family %s revoked", _family_tag(token.family))
        stats.incr("chatsdk_logouts")
        return Response(status=204)
