from celery import shared_task

from accounts.sessions import SessionStore


@shared_task
def delete_expired_sessions() -> None:
    """Daily housekeeping: an expired session is never read again."""
    SessionStore.clear_expired()
