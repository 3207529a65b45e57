"""The benchmark (`invoke bench`): production settings plus the limit reference route.

Everything is production's (DEBUG off, whitenoise manifest, secure cookies, the same
middleware) except two additions from `config.bench`: the URLconf adds
`/bench/limit/`, a trivial view that is the ceiling every endpoint is compared with,
and a first middleware that reports a request's SQL query count when the harness asks
for it with a request header. Production never loads this module.
"""

from .production import *  # noqa: F403
from .production import MIDDLEWARE

ROOT_URLCONF = "config.bench"
MIDDLEWARE = ["config.bench.QueryCountMiddleware", *MIDDLEWARE]
# The seed command creates users with a known password only where this is set (or DEBUG).
BENCHMARK = True
