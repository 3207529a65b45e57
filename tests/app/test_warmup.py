"""A web process prepares at start what its first request would (core/warmup.py).

The probe runs in a fresh interpreter with production settings, as a gunicorn worker
forked from the master would: it loads the WSGI application, then serves one signed-in
todo list and reports the templates compiled and the modules imported while serving it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from todos.models import Category, Todo

APP_DIR = Path(__file__).resolve().parents[2] / "app"

PROBE = """
import json, sys
{load_application}
from django.template.base import Template
from django.test import RequestFactory

request = RequestFactory().get("/", HTTP_HOST="localhost", HTTP_COOKIE="{cookie}", secure=True)
compiled = []
compile_template = Template.__init__

def counting_init(self, template_string, origin=None, name=None, engine=None):
    compiled.append(name or (origin.name if origin else "<string>"))
    compile_template(self, template_string, origin, name, engine)

Template.__init__ = counting_init
modules_before = set(sys.modules)
statuses = []
respond = lambda status, headers, exc_info=None: statuses.append(status)
body = b"".join(application(request.environ, respond))
print(json.dumps({{
    "status": statuses[0],
    "body": body.decode(),
    "templates": compiled,
    "imported": sorted(set(sys.modules) - modules_before),
}}))
"""
WITH_WARM_UP = "from config.wsgi import application"
WITHOUT_WARM_UP = (
    "from django.core.wsgi import get_wsgi_application; application = get_wsgi_application()"
)


def first_request(load_application: str, cookie: str, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(load_application=load_application, cookie=cookie)],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def signed_in_cookie(transactional_db, make_user):
    """A signed-in session, committed so that the probe's own connection sees it."""
    user = make_user()
    errands = Category.objects.create(user=user, name="Errands")
    for number in range(3):
        Todo.objects.create(user=user, title=f"Warm todo {number}", category=errands)
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_the_first_list_request_compiles_no_template_and_imports_no_module(
    signed_in_cookie, process_env
):
    served = first_request(WITH_WARM_UP, signed_in_cookie, process_env)

    assert served["status"].startswith("200")
    assert "Warm todo 2" in served["body"]
    assert served["templates"] == []
    assert served["imported"] == [], served["imported"]


def test_without_the_warm_up_the_first_request_does_that_work(signed_in_cookie, process_env):
    """The probe sees the work the warm-up saves: it is not blind to it."""
    served = first_request(WITHOUT_WARM_UP, signed_in_cookie, process_env)

    assert served["status"].startswith("200")
    assert "todos/list.html" in served["templates"]
    assert "django_htmx.templatetags.django_htmx" in served["imported"]
