"""Cancel handles of running generations: a run is a context manager, a newer run of the same key
supersedes it, Stop cancels one key, a page that is gone cancels every run of its session."""

from playground.services.answers.runs import RunRegistry


def test_a_run_is_registered_while_its_block_lasts():
    runs = RunRegistry()
    key = ("compare", "tab-1")
    with runs.run(key) as cancel:
        assert runs.running(key) and not cancel.is_set()
    assert not runs.running(key) and not cancel.is_set()
    assert runs.cancel(key) == 0  # nothing left to stop


def test_a_newer_run_of_the_same_key_supersedes_the_older_one():
    runs = RunRegistry()
    key = ("compare", "tab-1")
    with runs.run(key) as older:
        with runs.run(key) as newer:
            assert older.is_set() and runs.superseded(older)
            assert not newer.is_set() and not runs.superseded(newer)
        assert runs.superseded(older)
    assert not runs.superseded(older)  # forgotten once its own block ends
    with runs.run(("compare", "tab-2")) as other, runs.run(("arena", "tab-1")) as arena:
        assert not other.is_set() and not arena.is_set()


def test_stop_cancels_one_key_and_is_not_a_takeover():
    runs = RunRegistry()
    with runs.run(("compare", "tab-1")) as cancel, runs.run(("arena", "tab-1")) as arena:
        assert runs.cancel(("compare", "tab-1")) == 1
        assert cancel.is_set() and not runs.superseded(cancel) and not arena.is_set()


def test_a_page_that_is_gone_stops_every_run_of_its_session():
    runs = RunRegistry()
    with (
        runs.run(("compare", "tab-1")) as compare,
        runs.run(("arena", "tab-1")) as arena,
        runs.run(("notebook", "tab-1")) as notebook,
        runs.run(("compare", "tab-2")) as elsewhere,
    ):
        assert runs.cancel_session("tab-1") == 3
        assert compare.is_set() and arena.is_set() and notebook.is_set()
        assert not elsewhere.is_set()
        assert runs.cancel_session("tab-1") == 0
