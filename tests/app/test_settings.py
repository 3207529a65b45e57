"""The settings contract, loaded in fresh interpreters with chosen environments."""

import json
import subprocess
import sys
from pathlib import Path

from tests.processes import app_env

APP_DIR = Path(__file__).resolve().parents[2] / "app"
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "k3y-" + "x7Qp9-LmZ2_rT8vW4sY6uB1nC5dE0fG3hJ" * 2,
    "DJANGO_ALLOWED_HOSTS": "todo.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://todo.example.com",
    "DATABASE_URL": "postgres://app:p%40ss@db.internal:5432/todo?sslmode=require",
    "REDIS_URL": "rediss://default:t0ken@cache.internal:6380/0",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
}


def run_django(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=APP_DIR,
        env=app_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_reports_no_warnings_with_production_values():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=APP_DIR,
        env=app_env(**PRODUCTION_ENV),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_django("", env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_a_broker():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "REDIS_URL"}
    result = run_django("", env)
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr


def test_urls_with_credentials_and_tls_are_read_whole():
    code = (
        "from django.conf import settings as s; import ssl;"
        "d = s.DATABASES['default'];"
        "print(d['USER'], d['PASSWORD'], d['HOST'], d['OPTIONS'].get('sslmode'),"
        "      d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS']);"
        "print(s.CELERY_BROKER_URL);"
        "print(s.CELERY_BROKER_USE_SSL['ssl_cert_reqs'] == ssl.CERT_REQUIRED);"
        "print(s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS)"
    )
    result = run_django(code, PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "app p@ss db.internal require 60 True"
    assert lines[1] == "rediss://default:t0ken@cache.internal:6380/0"
    assert lines[2] == "True"
    assert lines[3] == "smtp.example.com 587 True"


def test_plain_redis_url_with_user_and_password_reaches_the_real_server():
    """redis://user:pass@host:port/db, the form the seed project got wrong, connects."""
    import redis

    admin = redis.Redis(host="127.0.0.1", port=6379)
    admin.acl_setuser(
        "todo-test", enabled=True, passwords=["+p@ss:word"], keys=["*"], commands=["+@all"]
    )
    try:
        code = (
            "import redis; from django.conf import settings as s;"
            "print(redis.Redis.from_url(s.REDIS_URL).ping())"
        )
        result = run_django(
            code,
            {**PRODUCTION_ENV, "REDIS_URL": "redis://todo-test:p%40ss%3Aword@127.0.0.1:6379/9"},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "True"
    finally:
        admin.acl_deluser("todo-test")


def test_local_settings_run_without_services():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    result = run_django(code, {"DJANGO_SETTINGS_MODULE": "config.settings.local"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


def test_production_logs_are_json_lines():
    code = (
        "import logging;"
        "logging.getLogger('todo.test').warning('hello %s', 'world', extra={'todo_id': 7})"
    )
    result = run_django(code, PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout.strip().splitlines()[-1])
    assert (
        entry["level"] == "WARNING" and entry["message"] == "hello world" and entry["todo_id"] == 7
    )
