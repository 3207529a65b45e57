"""Django's ModelBackend, reading the signed-in user from the default cache (Redis).

Every signed-in request loads its user (AuthenticationMiddleware calls the backend's
`get_user`, the method Django documents for custom backends). The user is kept in the
cache under its id and dropped whenever it is saved or deleted (the receivers below),
so a password change, a deactivation or a rename reaches the next request of every
session. A write that sends no signal (`QuerySet.update`) reaches it within core.cached.TIMEOUT. A
Redis that is down reads as a miss: the user comes from the database, as in ModelBackend.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core.cached import TIMEOUT, forget


def user_cache_key(user_id) -> str:
    return f"user:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id):
        key = user_cache_key(user_id)
        user = cache.get(key)
        if user is None:
            user = super().get_user(user_id)
            if user is not None:
                cache.set(key, user, TIMEOUT)
        return user if self.user_can_authenticate(user) else None


@receiver(post_save, sender=get_user_model(), dispatch_uid="forget-cached-user-on-save")
@receiver(post_delete, sender=get_user_model(), dispatch_uid="forget-cached-user-on-delete")
def forget_cached_user(sender, instance, **kwargs) -> None:
    forget([user_cache_key(instance.pk)])
