#!/usr/bin/env python3
"""Django's command-line utility, for by-hand work (e.g. `makemigrations confab_api`).
To run the backend, use serve.py."""

import os
import sys


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "confab_backend.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
