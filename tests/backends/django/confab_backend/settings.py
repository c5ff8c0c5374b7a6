"""Settings of the Django test backend. Everything variable comes from the environment (see
README.md); `serve.py` sets CONFAB_DJANGO_BASE_URL and CONFAB_DJANGO_DATA_DIR before Django loads.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path


def _env_int(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError as e:
        raise SystemExit(f"{name}={value!r} is not a whole number") from e
    if number < 1:
        raise SystemExit(f"{name}={value!r} must be at least 1")
    return number


def _env_str(name, default):
    value = os.environ.get(name, "").strip()
    return value or default


DATA_DIR = Path(os.environ.get("CONFAB_DJANGO_DATA_DIR") or Path(__file__).resolve().parent.parent / ".data")
BASE_URL = os.environ.get("CONFAB_DJANGO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# A new key per start: SimpleJWT signs its HS256 tokens with it, so tokens never outlive the
# process that issued them.
SECRET_KEY = secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    # Installed for its system checks; see SILENCED_SYSTEM_CHECKS.
    "django_ratelimit",
    "confab_api",
]

MIDDLEWARE = [
    "confab_api.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "confab_backend.urls"
WSGI_APPLICATION = "confab_backend.wsgi.application"
APPEND_SLASH = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or str(DATA_DIR / "db.sqlite3"),
        "OPTIONS": {
            # Writers take the lock when their transaction starts, so concurrent requests queue
            # instead of failing with "database is locked" half-way.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

# django-ratelimit counts in this cache. LocMemCache lives in one process: serve.py runs a
# single gunicorn worker with threads, so every request sees the same counters.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# django-ratelimit reports LocMemCache as "not a shared cache" (E003, an error that stops
# migrate) and "not officially supported" (W001); it is shared here, by the single worker.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# PBKDF2 like Django's default, with fewer rounds so a login answers in milliseconds (the hash
# strength is not what this backend tests).
PASSWORD_HASHERS = ["confab_api.hashers.TestPBKDF2PasswordHasher"]
PBKDF2_ITERATIONS = _env_int("DJANGO_PBKDF2_ITERATIONS", 20_000)
AUTH_PASSWORD_VALIDATORS = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "confab_api.errors.exception_handler",
}

ACCESS_TTL_SECS = _env_int("DJANGO_ACCESS_TTL_SECS", 10)
REFRESH_TTL_SECS = _env_int("DJANGO_REFRESH_TTL_SECS", 86_400)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=ACCESS_TTL_SECS),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=REFRESH_TTL_SECS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

# The login rate (django-ratelimit syntax, per client IP).
LOGIN_RATE = _env_str("DJANGO_LOGIN_RATE", "5/m")

# Connection tokens for the chat server, signed with this backend's own RSA key.
CHAT_ISSUER = _env_str("DJANGO_CHAT_ISSUER", BASE_URL).rstrip("/")
CHAT_AUDIENCE = _env_str("DJANGO_CHAT_AUDIENCE", "confab-chat")
CHAT_TTL_SECS = _env_int("DJANGO_CHAT_TTL_SECS", 60)
CHAT_KEY_FILE = os.environ.get("DJANGO_CHAT_KEY_FILE") or str(DATA_DIR / "chat-signing-key.pem")

# ChatSDK-shaped token service: lifetime of its opaque refresh tokens.
CHATSDK_REFRESH_TTL_SECS = _env_int("DJANGO_CHATSDK_REFRESH_TTL_SECS", 86_400)

# ChatKit-shaped sessions: per-user rate (django-ratelimit syntax; 5/60s = 5 per 60 s) and how
# long after its expiry a client secret may still be exchanged for a new one.
CHATKIT_RATE = _env_str("DJANGO_CHATKIT_RATE", "5/60s")
CHATKIT_REFRESH_GRACE_SECS = 300

TEST_ROUTES = os.environ.get("DJANGO_TEST_ROUTES") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        # stderr only: stdout carries nothing but serve.py's ready line.
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {
        # 4xx answers are logged by the request log already; keep tracebacks of 5xx.
        "django.request": {"level": "ERROR"},
        "django.db.backends": {"level": "WARNING"},
        # A foreign Host header is answered 400; the request log shows it without a traceback.
        "django.security.DisallowedHost": {"level": "CRITICAL"},
    },
}
