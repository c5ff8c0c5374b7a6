"""Seed 004's first-party login and SimpleJWT's refresh and blacklist views (counted, logged)."""

import logging

from django.contrib.auth import get_user_model
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.views import TokenBlacklistView, TokenRefreshView

from . import stats
from .base import CountingAPIView, login_limit, string_fields
from .errors import describe, error

log = logging.getLogger("confab.auth")


def find_user(identifier):
    """The user whose username is `identifier` (exactly), else whose email it is (any case,
    when exactly one user has it)."""
    User = get_user_model()
    user = User.objects.filter(username=identifier).first()
    if user is None and "@" in identifier:
        matches = list(User.objects.filter(email__iexact=identifier)[:2])
        if len(matches) == 1:
            user = matches[0]
    return user


class LoginView(CountingAPIView):
    """POST {"email": <email or username>, "password"} -> the user and a SimpleJWT pair."""

    authentication_classes = []
    permission_classes = [AllowAny]
    refused_counter = "login_bad_request"

    def post(self, request):
        stats.incr("login_attempts")
        wait = login_limit(request)
        if wait is not None:
            stats.incr("login_rate_limited")
            log.info("login refused: rate limited, retry after %d s", wait)
            return error(
                429,
                "rate_limited",
                f"Too many login attempts. Try again in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )

        values, problems = string_fields(request, "email", "password")
        if problems:
            stats.incr("login_bad_request")
            log.info("login refused: missing or blank %s", ", ".join(sorted(problems)))
            return error(400, "invalid_request", "Both email and password are required.", fields=problems)

        user = find_user(values["email"].strip())
        if user is None:
            # Hash anyway, so an unknown user takes as long as a wrong password.
            get_user_model()().set_password(values["password"])
            return self._invalid()
        if not user.check_password(values["password"]):
            return self._invalid()
        if not user.is_active:
            stats.incr("login_inactive")
            log.info("login refused: account %s is inactive", user.get_username())
            return error(403, "account_inactive", "This account is inactive.")

        refresh = RefreshToken.for_user(user)
        stats.incr("login_ok")
        log.info("login ok: %s", user.get_username())
        return Response(
            {
                "username": user.get_username(),
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "access_token": str(refresh.access_token),
                "refresh_token": str(refresh),
            }
        )

    def _invalid(self):
        stats.incr("login_invalid_credentials")
        log.info("login refused: invalid credentials")
        return error(401, "invalid_credentials", "Invalid email/username or password.")


class CountedTokenRefreshView(TokenRefreshView):
    """SimpleJWT's TokenRefreshView (rotation + blacklist after rotation), counted and logged."""

    def post(self, request, *args, **kwargs):
        try:
            response = super().post(request, *args, **kwargs)
        except Exception as exc:
            stats.incr("refresh_refused")
            log.info("token refresh refused: %s", describe(exc))
            raise
        stats.incr("refresh_ok")
        # Read for the log line only, without verifying: a 1 s access token may already have
        # expired here, and the rotation is done (failing now would lose the new token).
        user_id = AccessToken(response.data["access"], verify=False).get("user_id")
        log.info("token refresh ok: user_id %s, refresh token rotated", user_id)
        return response


class CountedTokenBlacklistView(TokenBlacklistView):
    """SimpleJWT's TokenBlacklistView, counted and logged."""

    def post(self, request, *args, **kwargs):
        try:
            response = super().post(request, *args, **kwargs)
        except Exception as exc:
            stats.incr("blacklist_refused")
            log.info("token blacklist refused: %s", describe(exc))
            raise
        stats.incr("blacklist_ok")
        log.info("token blacklist ok")
        return response
