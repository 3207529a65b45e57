"""A minimal browser for the harness: sign in, keep the cookies, read ids from pages.

Plain `http.client`, because the harness needs exact control of what is sent: the
production settings mark cookies `Secure`, which a cookie jar would then refuse to send
over the loopback's plain HTTP.
"""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from bench import HarnessError

COUNT_QUERIES_HEADER = "X-Bench-Count-Queries"  # config/bench.py
QUERIES_HEADER = "X-Bench-Queries"
LOGIN_PATH = "/accounts/login/"
# The cookies every request of a signed-in browser carries. One-off cookies (flash
# messages) are left out: wrk would send them again with every request.
SESSION_COOKIES = ("sessionid", "csrftoken")

_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_CATEGORY_SELECT = re.compile(r'<select id="filter-category".*?</select>', re.DOTALL)
_OPTION_ID = re.compile(r'<option value="(\d+)"')
_TOGGLE_PATH = re.compile(r'action="/todos/(\d+)/toggle/"')
_HASHED_STYLESHEET = re.compile(r'<link rel="stylesheet" href="(/static/[^"]+\.[0-9a-f]{12}\.css)"')


class ClientError(HarnessError):
    pass


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    text: str


@dataclass
class Session:
    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def csrf_token(self) -> str:
        return self.cookies.get("csrftoken", "")

    def headers(self, method: str = "GET", htmx: bool = False) -> dict[str, str]:
        """The headers a browser on this site sends: its cookies, and for POST the CSRF token."""
        headers = {}
        cookies = [
            f"{name}={self.cookies[name]}" for name in SESSION_COOKIES if name in self.cookies
        ]
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        if method == "POST":
            headers |= {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.origin,
                "X-CSRFToken": self.csrf_token,
            }
        if htmx:
            headers |= {"HX-Request": "true", "HX-Current-URL": f"{self.origin}/"}
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            raw = connection.getresponse()
            response = Response(raw.status, raw.headers, raw.read().decode("utf-8", "replace"))
        finally:
            connection.close()
        self.remember_cookies(response.headers.get_all("Set-Cookie") or [])
        return response

    def remember_cookies(self, set_cookie_headers: list[str]) -> None:
        for header in set_cookie_headers:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)  # the server deleted it

    def get(self, path: str) -> Response:
        return self.request("GET", path, headers=self.headers())

    def login(self, username: str, password: str, path: str = LOGIN_PATH) -> None:
        page = self.get(path)
        token = _CSRF_INPUT.search(page.text)
        if page.status != 200 or token is None:
            raise ClientError(f"GET {path} answered {page.status} without a login form")
        form = urlencode(
            {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
        )
        headers = self.headers("POST") | {"Referer": f"{self.origin}{path}"}
        answer = self.request("POST", path, form, headers)
        if answer.status != 302 or "sessionid" not in self.cookies:
            raise ClientError(f"signing in as {username} failed (HTTP {answer.status})")

    def count_queries(self, method: str, path: str, body: str, headers: dict[str, str]) -> int:
        """SQL statements the server ran for this one request (the bench settings count them)."""
        response = self.request(method, path, body, headers | {COUNT_QUERIES_HEADER: "1"})
        count = response.headers.get(QUERIES_HEADER)
        if count is None:
            raise ClientError(
                f"{method} {path} answered without {QUERIES_HEADER}: is the server running "
                "config.settings.bench?"
            )
        return int(count)


def category_ids(list_page: str) -> list[int]:
    """The user's category ids, from the list page's category filter."""
    select = _CATEGORY_SELECT.search(list_page)
    return [int(pk) for pk in _OPTION_ID.findall(select.group(0))] if select else []


def hashed_stylesheet(page: str) -> str | None:
    """The page's stylesheet path when it carries a content hash (manifest storage)."""
    match = _HASHED_STYLESHEET.search(page)
    return match.group(1) if match else None


def toggle_ids(list_page: str) -> list[int]:
    """Ids of the todos shown on a list page (their complete/reopen forms)."""
    return [int(pk) for pk in _TOGGLE_PATH.findall(list_page)]
