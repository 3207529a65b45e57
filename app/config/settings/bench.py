"""The benchmark (`invoke bench`): production settings plus the limit reference route.

Everything is production's (DEBUG off, whitenoise manifest, secure cookies, the same
middleware) except the folder static files are collected into, and two additions from
`config.bench`: the URLconf adds `/bench/limit/`, a trivial view that is the ceiling
every endpoint is compared with, and a first middleware reports a request's SQL query
count when the harness asks for it with a request header. Production never loads this
module.
"""

from .production import *  # noqa: F403
from .production import MIDDLEWARE, REPO_ROOT

ROOT_URLCONF = "config.bench"
MIDDLEWARE = ["config.bench.QueryCountMiddleware", *MIDDLEWARE]
# The seed command creates users with a known password only where this is set (or DEBUG).
BENCHMARK = True
# Collected into a folder of the benchmark's own: a collectstatic into app/staticfiles by
# another tool meanwhile would hand a recycled worker a half-written manifest.
STATIC_ROOT = REPO_ROOT / ".dev" / "bench" / "staticfiles"
