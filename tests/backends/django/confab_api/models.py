"""Refresh-token families of the ChatSDK-shaped token service (seed 003), kept in the database.

A family is one login of one client: each refresh rotates its token, the previous one is marked
rotated. Presenting a rotated token again is reuse: the whole family is revoked. Only SHA-256
hashes of the opaque tokens are stored.
"""

import uuid

from django.conf import settings
from django.db import models


class ChatSdkFamily(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # "reuse" or "logout" once revoked.
    revoked_reason = models.CharField(max_length=16, blank=True)


class ChatSdkRefreshToken(models.Model):
    family = models.ForeignKey(ChatSdkFamily, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    rotated_at = models.DateTimeField(null=True, blank=True)
