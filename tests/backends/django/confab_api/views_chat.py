"""Connection tokens for the chat server, and the discovery document and key set it verifies
them with (`<issuer>/.well-known/openid-configuration` -> `jwks_uri`)."""

import logging

from django.conf import settings
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from . import stats
from .base import CountingAPIView
from .signing import chat_expiry, now, signer

log = logging.getLogger("confab.chat")


class ChatTokenView(CountingAPIView):
    """POST with `Authorization: Bearer <SimpleJWT access token>` -> {"token", "expires_in"}."""

    permission_classes = [IsAuthenticated]
    refused_counter = "chat_tokens_refused"

    def post(self, request):
        issued_at = now()
        expires_at = chat_expiry(issued_at, request.auth)
        token = signer().mint(request.user, issued_at, expires_at)
        stats.incr("chat_tokens_minted")
        log.info("chat token minted for %s, expires in %d s", request.user.get_username(), expires_at - issued_at)
        return Response({"token": token, "expires_in": expires_at - issued_at})


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def discovery(request):
    return Response(
        {
            "issuer": settings.CHAT_ISSUER,
            "jwks_uri": f"{settings.BASE_URL}/.well-known/jwks.json",
        }
    )


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def jwks(request):
    return Response({"keys": [signer().public_jwk]})
