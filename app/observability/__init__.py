"""Observability: request-scoped log context, and Prometheus metrics for web and Celery.

- `logs`: the fields every log line of a request or task carries (request_id, user_id,
  task_id), and how the request id travels from web into Celery tasks.
- `middleware`: takes or makes the request id and returns it in `X-Request-ID`; counts
  and times every response by view.
- `metrics_server`: serves /metrics on its own port (never through the public URLconf),
  gathering every gunicorn worker's metrics.
- `celery_exporter`: the process that turns Celery events and the broker's queues into
  Prometheus metrics; `beat` records beat's last tick where that process can read it.
"""
