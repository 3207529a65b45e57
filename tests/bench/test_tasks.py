"""`invoke bench` stops early, with a one-line fix, when it cannot run."""

import pytest
from invoke import Context
from invoke.exceptions import Exit

from bench.processes import ProcessError
from ops import bench


@pytest.mark.parametrize(
    ("options", "messages"),
    [
        ({"only": "list-50,lsit-500"}, ["unknown endpoint(s) lsit-500", "known: limit, mix"]),
        ({"only": "mix", "writes": 1.5}, ["--writes is a share between 0 and 1"]),
        ({"only": "login", "peer": "."}, ["no manage.py there"]),
        ({"only": "mix", "app": "."}, ["no bin/web there"]),
    ],
)
def test_bad_options_are_refused_with_what_would_do(options, messages, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "." is an empty folder
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), **options)
    assert stopped.value.code == 2
    for message in messages:
        assert message in stopped.value.message


def test_a_missing_wrk_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), only="list-50")
    assert stopped.value.code == 127
    assert "apt-get install -y wrk" in stopped.value.message


def test_only_the_harness_s_own_errors_end_a_step_with_their_message_alone():
    def raising(error):
        def step():
            raise error

        return step

    with pytest.raises(Exit, match=r"^error: gunicorn did not start$"):
        bench.guarded(raising(ProcessError("gunicorn did not start")))
    with pytest.raises(RuntimeError, match="a bug"):  # its trace stays
        bench.guarded(raising(RuntimeError("a bug")))
