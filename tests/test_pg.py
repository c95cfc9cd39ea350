"""The throw-away PostgreSQL server the shared-study tests run on (tests/pg.py, the `postgres` fixture):
a database that keeps its data across a stop and a start, refuses connections while stopped, and
holds an Optuna study through the URL the sweep is given."""
import time

import pytest

from pg import Server, Unavailable, free_port

pytestmark = pytest.mark.slow
CONNECT = {"connect_args": {"connect_timeout": 5}}          # what a sweep worker gives RDBStorage


def test_tables_survive_a_stop_and_start(postgres):
    psycopg = pytest.importorskip("psycopg")
    url = postgres.fresh_url()
    assert url.startswith(f"postgresql://biosig:{postgres.password}@127.0.0.1:{postgres.port}/t_")
    assert postgres.fresh_url() != url                       # one database per call
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE trials (id int PRIMARY KEY, value float)")
        conn.execute("INSERT INTO trials VALUES (1, 0.5), (2, 0.25)")
    with pytest.raises(psycopg.OperationalError):            # the password is checked (scram-sha-256)
        psycopg.connect(url.replace(postgres.password, "wrong"), connect_timeout=5)
    postgres.stop()
    try:
        with pytest.raises(psycopg.OperationalError, match="refused"):
            psycopg.connect(url, connect_timeout=5)
    finally:
        postgres.start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM trials ORDER BY id").fetchall() == [(0.5,), (0.25,)]


def test_an_optuna_study_lives_in_it(postgres):
    optuna = pytest.importorskip("optuna")
    url = postgres.fresh_url()
    study = optuna.create_study(storage=optuna.storages.RDBStorage(url, engine_kwargs=CONNECT),
                                study_name="s", direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    # a second process's view: a new storage on the same URL sees the same trials
    again = optuna.load_study(storage=optuna.storages.RDBStorage(url, engine_kwargs=CONNECT), study_name="s")
    assert [t.value for t in again.trials] == [t.value for t in study.trials] and len(again.trials) == 3
    assert again.best_value == max(t.value for t in study.trials)


def test_optuna_on_a_database_that_is_not_there_fails_at_once(capsys):
    """A stopped server and a closed port are both refused connections: Optuna raises, it does not
    hang (the seconds are printed for the record, not asserted)."""
    optuna = pytest.importorskip("optuna")
    import sqlalchemy.exc
    try:
        server = Server()
    except Unavailable as why:
        pytest.skip(f"PostgreSQL cannot be started here: {why}")
    with server:
        url = server.fresh_url()
        optuna.create_study(storage=optuna.storages.RDBStorage(url, engine_kwargs=CONNECT), study_name="s")
        server.stop()
        for what, gone in (("stopped server", url), ("closed port", url.replace(f":{server.port}/", f":{free_port()}/"))):
            start = time.monotonic()
            with pytest.raises(sqlalchemy.exc.OperationalError, match="refused"):
                optuna.load_study(storage=optuna.storages.RDBStorage(gone, engine_kwargs=CONNECT), study_name="s")
            with capsys.disabled():
                print(f"\nOptuna against a {what}: refused after {time.monotonic() - start:.3f} s")
