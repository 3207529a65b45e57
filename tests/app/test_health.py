import json

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from core import health

pytestmark = pytest.mark.django_db


def test_liveness_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_reports_each_component(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.parametrize("host", ["10.244.1.17:8000", "172.16.0.5", "[fd00::1]:8000"])
def test_probes_answer_any_host_header(client, host):
    assert client.get("/healthz", HTTP_HOST=host).status_code == 200
    assert client.get("/readyz", HTTP_HOST=host).status_code == 200


def test_other_urls_still_enforce_allowed_hosts(client):
    assert client.get("/accounts/login/", HTTP_HOST="10.244.1.17").status_code == 400


def test_unreachable_broker_keeps_web_ready_and_says_so_without_error_text(client, caplog):
    """Web serves every page without the broker (sessions and data are in PostgreSQL): it
    stays in its Service, and the detail shows the outage (the exporter's celery_broker_up
    and the TodoCeleryBrokerUnreachable alert report it too)."""
    # A closed port on loopback: the real client fails to connect, as in an outage.
    with override_settings(REDIS_URL="redis://user:s3cret@127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "degraded", "checks": {"database": "ok", "broker": "fail"}}
    assert "s3cret" not in json.dumps(body) and "Error" not in json.dumps(body)
    assert "broker check failed" in caplog.text
    assert REGISTRY.get_sample_value("todo_readiness_check_up", {"check": "broker"}) == 0
    assert REGISTRY.get_sample_value("todo_readiness_check_up", {"check": "database"}) == 1
    client.get("/readyz")
    assert REGISTRY.get_sample_value("todo_readiness_check_up", {"check": "broker"}) == 1


def test_unreachable_database_is_503(client, monkeypatch):
    """Without PostgreSQL web can serve nothing: the pod leaves the Service."""
    monkeypatch.setitem(health.CHECKS, "database", lambda: False)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "fail", "checks": {"database": "fail", "broker": "ok"}}
