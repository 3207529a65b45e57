"""The reminder-scan step of the worker benchmark, on a small backlog."""

import io

import pytest
from django.core.management import call_command

from bench import reminders

pytestmark = pytest.mark.django_db


def test_measure_scan_times_every_batch_and_counts_its_statements(settings):
    settings.BENCHMARK = True
    settings.REMINDER_BATCH_SIZE = 100
    call_command(
        "seed", prefix="scan", users=5, todos=50, all_reminders_due=True, email_opt_in=0.0,
        stdout=io.StringIO(),
    )  # fmt: skip

    figures = reminders.measure_scan()

    assert figures["due"] == figures["reminded"] == 250
    assert figures["emails_queued"] == 0
    assert figures["batches"] == 3  # 100 + 100 + 50
    assert len(figures["queries_per_batch"]) == 1  # constant, whatever the batch's size
    assert figures["queries_per_batch"][0] > 0
    assert 0 < figures["batch_ms_p50"] <= figures["batch_ms_max"]
    assert figures["seconds"] > 0
    assert reminders.due_reminders() == 0
    assert reminders.email_states() == {"none": 250}


def test_a_scan_with_nothing_due_reports_no_batches():
    figures = reminders.measure_scan()
    assert figures["due"] == figures["reminded"] == figures["batches"] == 0
    assert figures["queries_per_batch"] == []
