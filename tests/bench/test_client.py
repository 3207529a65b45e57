"""The harness's browser keeps the cookies a signed-in browser sends, and nothing else."""

from bench.client import Session, hashed_stylesheet


def test_cookies_are_kept_replaced_and_deleted_as_the_server_says():
    session = Session("http://127.0.0.1:8000")
    session.remember_cookies([
        "csrftoken=first; expires=Thu, 25 Nov 2027 13:12:11 GMT; Max-Age=31449600; Path=/; "
        "SameSite=Lax; Secure",
        "sessionid=s3ss10n; HttpOnly; Path=/; SameSite=Lax; Secure",
        'messages="flash"; HttpOnly; Path=/; SameSite=Lax; Secure',
    ])  # fmt: skip
    session.remember_cookies(["csrftoken=rotated; Path=/; Secure"])
    assert session.cookies == {"csrftoken": "rotated", "sessionid": "s3ss10n", "messages": "flash"}
    session.remember_cookies(['messages=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0'])
    assert "messages" not in session.cookies


def test_requests_carry_the_session_and_for_post_the_csrf_token():
    session = Session(
        "http://127.0.0.1:8000/", {"sessionid": "s", "csrftoken": "t", "messages": "m"}
    )
    # One-off cookies (flash messages) are not sent again with every request.
    assert session.headers() == {"Cookie": "sessionid=s; csrftoken=t"}
    assert session.headers("POST", htmx=True) == {
        "Cookie": "sessionid=s; csrftoken=t",
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": "http://127.0.0.1:8000",
        "X-CSRFToken": "t",
        "HX-Request": "true",
        "HX-Current-URL": "http://127.0.0.1:8000/",
    }
    assert Session("http://127.0.0.1:8000").headers() == {}


def test_the_hashed_stylesheet_is_found_only_when_it_carries_a_content_hash():
    page = '<head><link rel="stylesheet" href="/static/css/app.73827e4838b3.css"></head>'
    assert hashed_stylesheet(page) == "/static/css/app.73827e4838b3.css"
    assert hashed_stylesheet('<link rel="stylesheet" href="/static/css/app.css">') is None
