"""Password hashing: Django's PBKDF2-SHA256 with a configurable (lower) iteration count."""

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher


class TestPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Stores standard `pbkdf2_sha256$...` hashes. Django 5.2's 1,000,000 rounds cost about half
    a second per login on a small CI machine; DJANGO_PBKDF2_ITERATIONS (default 20,000) keeps
    logins and the start-up seeding fast."""

    iterations = settings.PBKDF2_ITERATIONS
