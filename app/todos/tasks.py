import logging

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from todos.models import Todo

logger = logging.getLogger(__name__)


@shared_task
def mark_overdue() -> dict:
    """Every minute (beat): mark open todos past due, unmark completed or moved ones.

    Two set-based UPDATEs, whatever the number of todos.
    """
    now = timezone.now()
    marked = Todo.objects.filter(status=Todo.Status.OPEN, is_overdue=False, due_at__lt=now).update(
        is_overdue=True
    )
    cleared = (
        Todo.objects.filter(is_overdue=True)
        .filter(Q(status=Todo.Status.DONE) | Q(due_at__isnull=True) | Q(due_at__gte=now))
        .update(is_overdue=False)
    )
    if marked or cleared:
        logger.info("overdue todos", extra={"marked": marked, "cleared": cleared})
    return {"marked": marked, "cleared": cleared}
