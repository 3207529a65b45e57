#!/usr/bin/env python
"""Django's command-line utility. Settings default to local development."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    if sys.argv[1:2] == ["runserver"]:
        # The development web server (Tilt, `invoke dev`); gunicorn starts it in post_fork.
        from observability import tracing

        tracing.start("web")
    execute_from_command_line(sys.argv)
