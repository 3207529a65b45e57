"""Work a web process would otherwise do on its first request, done once at start.

gunicorn imports the app in its master and forks every worker from it (`preload_app`),
the replacements after `max_requests` included, so what is prepared here each worker has
from its first request on. Left to that request, a new worker spent about 150 ms of CPU
on its first todo list (the template engine and every tag library, the templates
compiled, URL patterns, translations and formats) while the requests queued on it waited.

Nothing here opens a connection to PostgreSQL or Redis: forks would share it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import django.forms
from django.conf import settings
from django.core.cache import caches
from django.forms.renderers import get_default_renderer
from django.template import TemplateSyntaxError, engines
from django.urls import get_resolver
from django.utils import formats, translation
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Django's own form and widget templates, which the form renderer compiles on first use.
FORM_TEMPLATE_DIR = Path(django.forms.__file__).parent / "templates"


def warm_up() -> None:
    with translation.override(settings.LANGUAGE_CODE):
        formats.get_format_modules(settings.LANGUAGE_CODE)
        _populate_urls(get_resolver())
        for backend in engines.all():
            # Touching the engine loads the tag libraries of every installed app.
            backend.engine.template_context_processors  # noqa: B018 (imports them)
            _compile_templates(backend, backend.engine.dirs)
        _compile_templates(get_default_renderer().engine, [FORM_TEMPLATE_DIR])
    # Classes settings name that Django imports when a request first needs them.
    import_string(settings.MESSAGE_STORAGE)
    import_string(settings.SESSION_SERIALIZER)
    for alias in settings.CACHES:
        # The backend, and django-redis' client with its serializer: it connects on first use.
        getattr(caches[alias], "client", None)


def _populate_urls(resolver) -> None:
    """Compile every URL pattern and build the reverse lookups, namespaces included."""
    resolver.reverse_dict  # noqa: B018
    for _prefix, namespace_resolver in resolver.namespace_dict.values():
        _populate_urls(namespace_resolver)


def _compile_templates(backend, directories) -> None:
    """Compile every template under the directories into the backend's cached loader."""
    for directory in map(Path, directories):
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            name = path.relative_to(directory).as_posix()
            try:
                backend.get_template(name)
            except TemplateSyntaxError:
                # The page using it fails when asked for, as it would have; the site starts.
                logger.exception("template %s does not compile", name)
