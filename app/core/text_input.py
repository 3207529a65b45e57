"""Query strings and form bodies are UTF-8 text without NUL characters, or a 400.

PostgreSQL refuses NUL in text (a search for `%00` was a 500), and bytes that are not
UTF-8 (a lone surrogate, say) would become U+FFFD, silently. Django's form fields refuse
NUL with a field error already; this covers every query parameter of every view (the
list's search, the export, the admin's search) and every form field, before any view runs.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from django.core.exceptions import BadRequest

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def text_problem(encoded: bytes) -> str | None:
    """What is wrong with a URL-encoded string (`a=1&b=%00`), or None."""
    try:
        text = unquote_to_bytes(encoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    return "contains a NUL character" if "\x00" in text else None


class TextInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # As Django reads it: the WSGI string holds the raw bytes as ISO-8859-1.
        query = request.META.get("QUERY_STRING", "").encode("iso-8859-1", "replace")
        if problem := text_problem(query):
            raise BadRequest(f"The query string {problem}.")
        is_form = request.method == "POST" and request.content_type == FORM_CONTENT_TYPE
        if is_form and (problem := text_problem(request.body)):
            raise BadRequest(f"The form data {problem}.")
        return self.get_response(request)
