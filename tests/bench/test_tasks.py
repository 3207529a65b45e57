"""`invoke bench` stops early, with a one-line fix, when it cannot run."""

import pytest
from invoke import Context
from invoke.exceptions import Exit

from bench.processes import ProcessError
from ops import bench


def test_unknown_endpoints_are_refused_with_the_known_ones():
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), only="list-50,lsit-500")
    assert stopped.value.code == 2
    assert "unknown endpoint(s) lsit-500" in stopped.value.message
    assert "list-500" in stopped.value.message


def test_a_missing_wrk_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), only="list-50")
    assert stopped.value.code == 127
    assert "apt-get install -y wrk" in stopped.value.message


def test_a_write_share_outside_0_to_1_is_refused():
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), only="mix", writes=1.5)
    assert stopped.value.code == 2
    assert "--writes is a share between 0 and 1" in stopped.value.message


def test_a_peer_folder_without_manage_py_is_refused(tmp_path):
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), only="login", peer=str(tmp_path))
    assert stopped.value.code == 2
    assert "no manage.py there" in stopped.value.message


def test_an_app_folder_without_its_start_script_is_refused(tmp_path):
    with pytest.raises(Exit) as stopped:
        bench.web(Context(), only="mix", app=str(tmp_path))
    assert stopped.value.code == 2
    assert "no bin/web there" in stopped.value.message


def test_only_the_harness_s_own_errors_end_a_step_with_their_message_alone():
    def raising(error):
        def step():
            raise error

        return step

    with pytest.raises(Exit, match=r"^error: gunicorn did not start$"):
        bench.guarded(raising(ProcessError("gunicorn did not start")))
    with pytest.raises(RuntimeError, match="a bug"):  # its trace stays
        bench.guarded(raising(RuntimeError("a bug")))
