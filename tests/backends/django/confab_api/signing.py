"""The backend's own signing key and the connection tokens it mints for the chat server.

RS256 with a 2048-bit RSA key read from DJANGO_CHAT_KEY_FILE (PKCS#8 or traditional PEM), else
from `<data dir>/chat-signing-key.pem`, created on first use. The `kid` is the key's RFC 7638
thumbprint, so it stays the same for as long as the key file does.
"""

import base64
import functools
import hashlib
import json
import os
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

ALGORITHM = "RS256"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(number):
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def display_name(user):
    """`first last`, else the username."""
    return user.get_full_name().strip() or user.get_username()


class ChatSigner:
    def __init__(self, private_key):
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("the chat signing key must be an RSA private key")
        self._private_key = private_key
        self._public_key = private_key.public_key()
        numbers = self._public_key.public_numbers()
        n, e = _b64url_uint(numbers.n), _b64url_uint(numbers.e)
        thumbprint_input = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
        self.kid = _b64url(hashlib.sha256(thumbprint_input.encode("ascii")).digest())
        self.public_jwk = {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": self.kid, "n": n, "e": e}

    def mint(self, user, issued_at, expires_at):
        """A connection token for `user`: iss, aud, sub (username), name, iat, exp, jti."""
        claims = {
            "iss": settings.CHAT_ISSUER,
            "aud": settings.CHAT_AUDIENCE,
            "sub": user.get_username(),
            "name": display_name(user),
            "iat": issued_at,
            "exp": expires_at,
            # Two tokens minted in the same second still differ.
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token, leeway=0):
        """Claims of a token this backend minted (signature, iss, aud, exp with `leeway` seconds);
        raises jwt.InvalidTokenError otherwise."""
        return jwt.decode(
            token,
            self._public_key,
            algorithms=[ALGORITHM],
            audience=settings.CHAT_AUDIENCE,
            issuer=settings.CHAT_ISSUER,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )


def _load_or_create(path):
    try:
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    except FileNotFoundError:
        pass
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a concurrent start never
    # reads half a key, and the first one linked wins.
    tmp = os.path.join(directory, f".chat-key-{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return _load_or_create(path)
    finally:
        os.unlink(tmp)
    return key


@functools.lru_cache(maxsize=1)
def signer():
    """The process's signer (serve.py calls this before gunicorn forks its worker)."""
    return ChatSigner(_load_or_create(settings.CHAT_KEY_FILE))


def chat_expiry(now, access_token=None):
    """`exp` of a chat token minted at `now`: DJANGO_CHAT_TTL_SECS later, but never after the
    SimpleJWT access token it was minted for."""
    ttl = settings.CHAT_TTL_SECS
    if access_token is not None:
        remaining = int(access_token["exp"]) - now
        ttl = min(ttl, max(remaining, 0))
    return now + ttl


def now():
    return int(time.time())
