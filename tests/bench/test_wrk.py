"""wrk's side of the harness: the Lua script against a real server, and its result line."""

import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import NoResultError, result_json, wrk

WRK_OUTPUT = """\
Running 30s test @ http://127.0.0.1:40123/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.37ms   10.02ms 180.11ms   81.20%
    Req/Sec   751.09     97.44     1.01k    70.50%
  45012 requests in 30.02s, 301.75MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   1499.40
Transfer/sec:     10.05MB
BENCH_RESULT {"requests": 45012, "duration_us": 30020000, "bytes": 316407000, \
"connect_errors": 0, "read_errors": 2, "write_errors": 0, "timeouts": 1, \
"unexpected_status": 4, "p50_us": 19500, "p90_us": 33000, "p99_us": 61250, \
"max_us": 180110, "mean_us": 21370.5}
"""


def test_parse_reads_the_result_line_among_wrks_own_output():
    result = wrk.parse(WRK_OUTPUT)
    assert result.requests == 45012
    assert result.seconds == pytest.approx(30.02)
    assert result.requests_per_second == pytest.approx(1499.4, abs=0.1)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (19.5, 33.0, 61.25)
    assert result.max_ms == pytest.approx(180.11)
    assert result.socket_errors == 3
    assert result.unexpected_status == 4
    assert result.errors == 7


def test_parse_says_what_wrk_printed_when_the_result_line_is_missing():
    with pytest.raises(NoResultError, match="unable to connect"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_the_last_result_line_wins():
    output = 'BENCH_RESULT {"step": 1}\nlog line\nBENCH_RESULT {"step": 2}\n'
    assert result_json(output, "step") == {"step": 2}


def test_a_path_the_lua_script_cannot_send_is_refused():
    with pytest.raises(ValueError, match="URL-encoded"):
        wrk.Request("GET", ("/a b/",)).environment()


def test_parse_reads_the_mix_redirects_and_writes():
    line = WRK_OUTPUT.splitlines()[-1].replace('"p50_us"', '"redirects": 3, "writes": 99, "p50_us"')
    result = wrk.parse(line)
    assert (result.redirects, result.writes, result.errors) == (3, 99, 7)
    assert wrk.parse(WRK_OUTPUT).redirects == 0  # load.lua's line has none


class Recorder(BaseHTTPRequestHandler):
    """Answers 200 on /ok/, 404 elsewhere, and records what each request carried."""

    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: Counter

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        marker = self.headers.get("X-Bench-Test") or self.headers.get("X-CSRFToken")
        cookie, origin = self.headers.get("Cookie"), self.headers.get("Origin")
        self.seen[(self.command, self.path, marker, cookie, body, origin)] += 1
        status = 200 if self.path in ("/ok/", "/?page=2", "/todos/new/") else 404
        status = 302 if self.path == "/redirect/" else status
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_server():
    Recorder.seen = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.seen
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_wrk_sends_the_request_cycles_paths_and_counts_unexpected_statuses(recording_server):
    base_url, seen = recording_server
    wrk_path = shutil.which("wrk")
    assert wrk_path, "wrk is needed: uv run invoke setup"
    request = wrk.Request(
        "POST",
        ("/ok/", "/missing/"),
        expect=200,
        headers={"X-Bench-Test": "yes", "Cookie": "sessionid=abc; csrftoken=def"},
        body="form=quick&title=Benchmark+todo",
    )
    load = wrk.Load(threads=2, connections=2)
    result = wrk.run(wrk_path, base_url, request, load, seconds=1)

    assert result.requests > 20
    assert result.socket_errors == 0
    carried = set(seen)
    cookie, body = "sessionid=abc; csrftoken=def", "form=quick&title=Benchmark+todo"
    assert carried == {("POST", path, "yes", cookie, body, None) for path in ("/ok/", "/missing/")}
    served = Counter()
    for (_, path, *_), count in seen.items():
        served[path] += count
    # Requests alternate between the paths; every 404 counted as an error (the server
    # may have answered a few more than wrk counted while it stopped).
    assert abs(served["/ok/"] - served["/missing/"]) <= load.connections * 2
    assert served["/missing/"] - load.connections <= result.unexpected_status <= served["/missing/"]
    assert result.unexpected_status > 0
    assert result.p50_ms > 0 and result.p99_ms >= result.p50_ms


@pytest.mark.slow
def test_the_mix_sends_each_users_own_cookies_token_and_todos(recording_server, tmp_path):
    base_url, seen = recording_server
    users = tmp_path / "users.txt"
    users.write_text("s1 c1 11,12\ns2 c2 21\n")
    mix = wrk.Mix(("/?page=2", "/redirect/"), users, f"{base_url}/", write_share=0.5)
    result = wrk.run(shutil.which("wrk"), base_url, mix, wrk.Load(threads=1, connections=2), 1)

    cookies = {"sessionid=s1; csrftoken=c1": "c1", "sessionid=s2; csrftoken=c2": "c2"}
    posted = Counter()
    for (method, path, token, cookie, body, origin), count in seen.items():
        assert cookie in cookies
        if method == "GET":
            assert path in mix.paths and token is None and body == ""
            continue
        assert token == cookies[cookie]  # each write carries its own user's CSRF token
        assert origin == base_url  # the Origin header Django's CSRF check compares
        own = {"c1": {"/todos/11/toggle/", "/todos/12/toggle/"}, "c2": {"/todos/21/toggle/"}}
        assert path == "/todos/new/" or path in own[token]
        posted["create" if path == "/todos/new/" else "toggle"] += count
    assert min(posted.values()) > 0 and len(posted) == 2
    assert 0.3 < result.writes / result.requests < 0.7
    assert result.redirects > 0  # /redirect/ answers 302, counted apart
    assert result.unexpected_status > 0  # toggles answer 404 here: an error
