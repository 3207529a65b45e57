"""The settings contract: every value that differs between environments is read here.

`local.py` and `test.py` only give other *defaults* for the same variables (they set
them in `os.environ` before importing this module), so web, worker and beat read one
contract everywhere. docs/settings.md documents each variable.
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE as CSP_NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF

APP_DIR = Path(__file__).resolve().parent.parent.parent  # app/
REPO_ROOT = APP_DIR.parent

env = environ.Env()

# --- Core ---------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Required outside debug: without it the process stops with ImproperlyConfigured.
SECRET_KEY = (
    env.str("DJANGO_SECRET_KEY", default="insecure-debug-only-key")
    if DEBUG
    else env.str("DJANGO_SECRET_KEY")
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The site's address in links sent by email (password reset): never the request's Host
# header, which a client chooses. production.py defaults it to https:// + the first host.
SITE_URL = env.str("DJANGO_SITE_URL", default="http://localhost:8000").rstrip("/")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_extensions",
    "django_htmx",
    "csp",
    "axes",
    "django_ratelimit",
    "core",
    "observability",
    "accounts",
    "todos",
    "notifications",
]

MIDDLEWARE = [
    # First: probes answer before host validation, sessions or the database are touched.
    "core.middleware.HealthCheckMiddleware",
    # Responses and their latency by view (probes above are not counted), and the request
    # id every log line of the request carries (returned in X-Request-ID).
    "observability.middleware.RequestMetricsMiddleware",
    "observability.middleware.RequestContextMiddleware",
    # 400 for a query string or form body that is not UTF-8 text, or holds a NUL.
    "core.text_input.TextInputMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Signed-in pages (and the CSV export) are never stored by a browser or proxy cache.
    "core.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.UserTimezoneMiddleware",
    # A rate-limited view raises Ratelimited; this answers it with RATELIMIT_VIEW (429).
    "django_ratelimit.middleware.RatelimitMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page (429).
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [APP_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "notifications.context_processors.unread_notifications",
            ],
        },
    }
]

# --- Data ---------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL")}
# Persistent connections, checked before reuse so a restarted database costs one retry.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, instrumented by django-prometheus: queries, their errors and new
    # connections (and their errors) for the metrics endpoint and the alerts.
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
    # Both documented options of the backend and psycopg: parameters travel apart from the
    # SQL (server_side_binding: no quoting of every value in Python), and a statement a
    # connection has run 5 times is prepared (prepare_threshold, which Django turns off
    # unless set), so PostgreSQL stops planning it on every request. Needs a direct
    # connection or a pooler in session mode (the managed PgBouncer pool is; transaction
    # mode would need PgBouncer 1.21+ with prepared statement support).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=5
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves web, worker and beat at once: WAL lets readers run
    # beside the writer, IMMEDIATE transactions queue writers instead of failing them.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# The Celery broker: redis://user:pass@host:6379/0, or rediss:// for managed Valkey/Redis
# with TLS, and the caches below. Sessions are in the database and the caches' callers
# work on without them, so the site keeps working while Redis is down; only background
# work waits for it.
# Unset means the embedded default (local development only): no Redis at all.
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_USES_TLS = REDIS_URL.startswith("rediss://")

# --- Accounts -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out sign-in before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.CachedModelBackend",  # Django's ModelBackend, the user from Redis
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "todos:list"
LOGOUT_REDIRECT_URL = "login"

# --- Abuse limits (docs/app.md) --------------------------------------------------------------
# The client's address (core/clientip.py): behind this many proxies (the ingress: 1), taken
# from the right of X-Forwarded-For; 0 trusts no header and uses the connection's address.
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
# Sign-in lockout (django-axes, counted in PostgreSQL: it holds while Redis is down). After
# LOGIN_FAILURE_LIMIT wrong passwords for one username, or from one address, sign-in is
# refused for LOGIN_LOCKOUT_MINUTES (every further try restarts the pause); a success resets.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# No row per successful sign-in (that table would only grow); failures are still counted,
# and their rows go once the lockout period has passed.
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "core.clientip.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Rate limits of the actions that send email on request (django-ratelimit, "count/period"
# with s, m, h or d): sign-up per address, password reset per address and per email.
# The counts live in Redis; while it is unreachable these actions are refused (429), the
# safe direction: nothing is sent unmetered (sign-in, sessions and todos keep working).
SIGNUP_RATE_LIMIT = env.str("SIGNUP_RATE_LIMIT", default="5/h")
PASSWORD_RESET_RATE_LIMIT = env.str("PASSWORD_RESET_RATE_LIMIT", default="5/h")
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_IP_META_KEY = "core.clientip.client_ip"
RATELIMIT_VIEW = "core.views.rate_limited"
RATELIMIT_FAIL_OPEN = False
# Redis through django-redis: an unreachable Redis answers "nothing there" within half a
# second instead of raising (IGNORE_EXCEPTIONS), logged as a warning with the cause.
_REDIS_OPTIONS = {
    "IGNORE_EXCEPTIONS": True,
    "SOCKET_CONNECT_TIMEOUT": 0.5,
    "SOCKET_TIMEOUT": 0.5,
    **({"CONNECTION_POOL_KWARGS": {"ssl_cert_reqs": "required"}} if REDIS_USES_TLS else {}),
}
_LOCAL = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
CACHES = {
    # The list's rendered rows (todos/rows.py), the signed-in user (accounts/backends.py),
    # their categories (todos/models.py) and unread count (notifications/models.py). In
    # Redis every web process reads what any of them rendered (in per-process memory, each
    # of 5 workers had to render every row once), and a write anywhere drops the copy
    # every process reads. Every key has a timeout, so a Redis that evicts only such keys
    # (volatile-lru) never evicts the broker's queues. A Redis that is down costs
    # renders and queries, not pages.
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "todo",
        "OPTIONS": _REDIS_OPTIONS,
    },
    # Each process's own, for fragments every visitor shares (the empty sign-in form): one
    # key reaches its hit rate at once.
    "local": _LOCAL,
    # django-ratelimit's counts; with no count it refuses (RATELIMIT_FAIL_OPEN = False).
    "ratelimit": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ratelimit",
        "OPTIONS": _REDIS_OPTIONS,
    },
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True  # a warning with the cause, once per call
if not REDIS_URL:
    # Embedded default (one development server, no Redis): the process's memory.
    CACHES["default"] = CACHES["ratelimit"] = _LOCAL
    # "Not shared" and "not officially supported": true, and right for one process.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Email ----------------------------------------------------------------------------
# consolemail:// prints mail to the log; smtp+tls://user:pass@host:587 in the clouds.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="Todo <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=10)

# --- Time and language ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# English only: labels, messages and date formats are used as written, not looked up in
# a translation catalogue on every use (the admin works the same without it).
USE_I18N = False
USE_TZ = True
# Stored times are UTC; this zone is shown to users who have not chosen their own.
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = APP_DIR / "staticfiles"
STATICFILES_DIRS = [APP_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names + compression at collectstatic time; whitenoise serves them with
    # far-future cache headers, so static files never reach a Django view.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Security (hardened further in production.py) -----------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Django's cached database sessions: read from Redis, kept in a table that also names the
# signed-in user, so that a user's sessions go with the user and the admin can end them
# (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts, styles, images and requests from this site
# only; no inline script or style (htmx's own indicator style is off, base.html, and in
# app.css). An inline <script> or <style> needs nonce="{{ request.csp_nonce }}": NONCE adds
# the request's nonce to the policy only on pages that use it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, CSP_NONCE],
        "style-src": [CSP_SELF, CSP_NONCE],
        "img-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    }
}
# Permissions-Policy (django-permissions-policy): the app uses no device or sensor API.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
        "browsing-topics",
    )
}

# --- Celery (the `CELERY_` namespace of config/celery.py) --------------------------------
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    # Embedded default: a broker that needs no server, shared by processes on one machine.
    # kombu does not create the queue folder: `invoke dev` does, before it starts them.
    _BROKER_DIR = REPO_ROOT / ".dev" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "control_folder": str(_BROKER_DIR / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task ETA/countdown: an unacked task is redelivered after it.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # Reconnect quickly after a broker restart instead of hanging on a dead socket.
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
    }
if REDIS_USES_TLS:
    # Managed Valkey/Redis: verify the server certificate against the system CAs.
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
CELERY_TIMEZONE = "UTC"  # beat schedules in UTC: no DST jumps skip or repeat a run
CELERY_ENABLE_UTC = True
CELERY_ACCEPT_CONTENT = ["json"]  # JSON only: a pickle payload could run code in the worker
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None  # no task reads a result; state lives in the database
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # ack after the task ran, so a killed worker's task is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...including when the process dies mid-task
CELERY_WORKER_PREFETCH_MULTIPLIER = (
    1  # one task at a time per process: no task waits behind a slow one
)
CELERY_TASK_TIME_LIMIT = 300  # hard kill for a stuck task
CELERY_TASK_SOFT_TIME_LIMIT = 240  # raises SoftTimeLimitExceeded first, to clean up
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True  # wait for the broker rather than crash-loop
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=None)
# Task events feed the Celery exporter's metrics (observability/celery_exporter.py): a few
# small pub/sub messages per task. "Sent" events would add one per publish for nothing.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = False
# Runtime files of worker and beat: liveness files (app/bin/probe) and beat's schedule.
# /tmp by default, the only writable path of the image's read-only root filesystem.
CELERY_HEARTBEAT_DIR = Path(env.str("CELERY_HEARTBEAT_DIR", default="/tmp"))  # noqa: S108
CELERY_BEAT_SCHEDULE_FILENAME = str(CELERY_HEARTBEAT_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "config.celery.LivenessScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 30  # ticks at least this often (core/liveness.py)
CELERY_BEAT_SCHEDULE = {
    "scan-reminders": {
        "task": "notifications.tasks.scan_reminders",
        "schedule": 60.0,
        "options": {"expires": 55},  # a scan that waited a minute is replaced by the next
    },
    "delete-old-notifications": {
        "task": "notifications.tasks.delete_old_notifications",
        "schedule": 24 * 60 * 60.0,
    },
    "delete-expired-sessions": {
        "task": "accounts.tasks.delete_expired_sessions",
        "schedule": 24 * 60 * 60.0,
    },
}

# --- Notifications ------------------------------------------------------------------------
# Todos the reminder scan claims per transaction (two statements each, whatever the size):
# larger batches cost fewer round trips, and hold their rows locked longer.
REMINDER_BATCH_SIZE = env.int("REMINDER_BATCH_SIZE", default=5000)
# Claimers that take those batches side by side, each on a database connection of its own
# (notifications/tasks.py): one per core of the database makes the most of it.
REMINDER_SCAN_THREADS = env.int("REMINDER_SCAN_THREADS", default=2)
# How long one email attempt may own a notification: a worker killed mid-send leaves the
# lease to expire, then a redelivered task sends it (SMTP connect + send + quit).
NOTIFICATION_EMAIL_LEASE_SECONDS = 3 * EMAIL_TIMEOUT + 5
NOTIFICATION_EMAIL_MAX_RETRIES = 5
NOTIFICATION_RETENTION_DAYS = 30  # read notifications older than this are deleted daily

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # request_id, user_id, task_id, task_name of what is being handled (observability/).
        "log_context": {"()": "observability.logs.LogContextFilter"},
    },
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("json", "text") else "json",
            "filters": ["log_context"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django adds console handlers of its own to these when DEBUG is on: one line each.
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # Disallowed hosts are probes and scanners: a warning, not an error mail.
        "django.security.DisallowedHost": {"level": "WARNING"},
        # django-axes announces itself at every start; its lockout warnings stay.
        "axes.apps": {"level": "WARNING"},
    },
}
