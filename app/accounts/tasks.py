import logging

from celery import shared_task
from django.utils import timezone

from accounts.models import Session

logger = logging.getLogger(__name__)


@shared_task
def delete_expired_sessions() -> int:
    """Daily housekeeping: an expired session is never read again (what `clearsessions` does)."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    logger.info("deleted expired sessions", extra={"deleted": deleted})
    return deleted
