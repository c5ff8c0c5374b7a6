"""WSGI entry point (serve.py hands it to gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "confab_backend.settings")

application = get_wsgi_application()
