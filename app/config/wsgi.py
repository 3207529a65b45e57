"""WSGI entry point for gunicorn (`config.wsgi:application`)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

from observability import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

if tracing.enabled():
    # Its middleware must be in MIDDLEWARE before the application builds the chain (in
    # gunicorn's master, which preloads the app; workers start exporting in post_fork).
    tracing.instrument_django()

application = get_wsgi_application()

# Before gunicorn forks its workers (preload_app): each starts with what its first
# request would otherwise prepare (core/warmup.py). Not with the local settings, which read
# templates uncached so that an edit shows at once: there compiling them all would only
# delay a restarted development server (core/devreload.py).
from django.conf import settings  # noqa: E402

from core.warmup import warm_up  # noqa: E402 - needs the apps

if "loaders" not in settings.TEMPLATES[0]["OPTIONS"]:
    warm_up()

# runserver serves /metrics on METRICS_PORT from this process; under gunicorn the master
# serves every worker's metrics instead (config/gunicorn.py), and this does nothing.
from observability.metrics_server import serve_this_process  # noqa: E402 - needs the apps

serve_this_process()

# What is loaded now lives as long as the process: moved out of the garbage collector's way
# (gc.freeze), so that collections, the last one at exit included, do not walk it: less
# copy-on-write in gunicorn's forked workers, and the development server stops in a blink.
gc.freeze()
