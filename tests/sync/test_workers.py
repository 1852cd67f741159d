"""Several `aftercal sync` workers on one PostgreSQL store never push one treatment at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from aftercal.config import read_secret
from aftercal.feeds import add_treatment
from aftercal.sync import channel_target
from calendars.feeds.store import open_store
from tests.caldav.conftest import USER
from tests.relay import RecordingProxy
from tests.sync.conftest import CALENDAR, Clinic

TREATMENTS = 12


@pytest.fixture
def slow_radicale(pg_clinic: Clinic) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(pg_clinic.radicale.url, delay=0.01)
    yield proxy
    proxy.close()


@pytest.mark.postgres
def test_two_workers_share_the_work_and_never_push_one_treatment_twice(
    pg_clinic: Clinic, slow_radicale: RecordingProxy
) -> None:
    secret = read_secret(pg_clinic.root / "config" / "aftercal.secret")
    target = channel_target("caldav", {"url": slow_radicale.url, "user": USER, "calendar": CALENDAR})
    for n in range(TREATMENTS):
        add_treatment("microneedling", "2027-03-16T10:00", "Europe/Paris", f"T-{n:02d}", db=pg_clinic.db,
                      channels=[target], secret=secret)  # fmt: skip
    env = {**os.environ, **pg_clinic.env()}
    command = [sys.executable, "-m", "aftercal.cli", "sync"]
    pipe = subprocess.PIPE
    workers = [subprocess.Popen(command, env=env, text=True, stdout=pipe, stderr=pipe) for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    by_worker = [[line.split()[0] for line in out.splitlines() if " caldav: in line" in line] for out, _ in outputs]
    assert sorted(by_worker[0] + by_worker[1]) == [f"T-{n:02d}" for n in range(TREATMENTS)]  # each once
    assert by_worker[0] and by_worker[1], "both workers took a share (10 treatments claimed at a time)"
    puts = Counter(path for method, path in slow_radicale.requests if method == "PUT")
    assert len(puts) == TREATMENTS * 17 and set(puts.values()) == {1}  # no event written twice
    assert len(pg_clinic.caldav_events()) == TREATMENTS * 17
    again = subprocess.run([sys.executable, "-m", "aftercal.cli", "sync"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "0 treatment(s) looked at" in again.stderr


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_treatment_is_claimed_by_one_worker_at_a_time(store_kind: str, request: pytest.FixtureRequest) -> None:
    if store_kind == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        url = str(request.getfixturevalue("tmp_path") / "c.db")
    store = open_store(url)
    try:
        add_treatment("microneedling", "2027-03-16T10:00", "Europe/Paris", "T-1", db=url)
        pk = store.get("T-1").pk
        for round_ in range(5):
            names = [f"worker-{round_}-{index}" for index in range(6)]
            holder = _race(url, pk, names)
            assert store.claim(pk, "someone-else") is None  # held until released
            store.release(pk, holder)
    finally:
        store.close()


def _race(url: str, pk: int, names: list[str]) -> str:
    """`names` claim treatment `pk` at the same moment, each with its own store: one wins."""
    stores = [open_store(url) for _ in names]
    barrier = threading.Barrier(len(stores))
    winners: list[str] = []

    def race(index: int) -> None:
        barrier.wait()
        if stores[index].claim(pk, names[index]) is not None:
            winners.append(names[index])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in stores:
        each.close()
    assert len(winners) == 1, winners
    return winners[0]
