"""Plug a custom job into the scheduler and run a whole simulated day with it.

    python examples/custom_job.py

Needs hantu-sched (``pip install ./dists/kisclient ./dists/hantu_sched``); it uses the public API
of both (``hantu_sched``, ``hantu_sched.pipeline``, ``kisclient``, ``kisclient.testing``) and
nothing else: no credentials, no network, no configuration file.

The default pipeline's ``screening`` is replaced by a hand-written job that quotes a fixed
list of codes with the sync client and keeps those above 10,000 KRW; selection, trading
(dry-run), market close and performance are the default pipeline's. The day runs on a fake clock
against the in-process fake KIS server, so it needs no credentials and takes about a second.

In production the same replacement is one line of configuration (see docs/configuration.md):

    [jobs]
    screening = "mypackage.jobs:price_floor_screening"
"""

from __future__ import annotations

import datetime as dt
import pathlib
import tempfile

from hantu_sched import (
    JOB_ORDER,
    KST,
    Credentials,
    FakeClock,
    IntegratedScheduler,
    JobContext,
    KISTarget,
    SchedulerConfig,
    SQLiteStorage,
    build_services,
)
from hantu_sched.pipeline import PipelineConfig, default_jobs
from kisclient import Env
from kisclient.testing import FakeKIS

#: The codes the custom screening looks at (set from the fake server's listing in main()).
WATCH: list[str] = []


def price_floor_screening(ctx: JobContext) -> None:
    """A screening job: quote a fixed list, keep prices >= 10,000 KRW, store the watchlist.

    The output contract of ``screening`` is ``ctx.storage.put_watchlist(date, ...)``; the default
    selection reads ``{"codes": [...]}`` (or a plain list of codes).
    """
    kis = ctx.services.kis  # a kisclient.KISClient (typed), shared by every job
    if kis is None:
        raise RuntimeError("this job needs a KIS client: build the services with build_services")
    kept = []
    for code in WATCH:
        ctx.check_stop()  # a graceful stop (SIGTERM) is honoured between requests
        quote = kis.get_price(code)
        if quote.price >= 10_000:
            kept.append(code)
    ctx.storage.put_watchlist(ctx.trading_date, {"codes": kept})
    ctx.logger.info("custom screening kept %d of %d codes", len(kept), len(WATCH))
    print(f"custom screening kept {len(kept)} of {len(WATCH)} codes: {', '.join(kept)}")


def main() -> None:
    day = dt.date(2026, 6, 4)
    clock = FakeClock(dt.datetime.combine(day, dt.time(5, 30), KST))
    fake = FakeKIS(clock=clock, seed=1)
    app = fake.add_app(env="paper")
    WATCH[:] = fake.universe[:12]  # the fake lists its own (deterministic) codes
    data_dir = tempfile.mkdtemp(prefix="hantu-custom-job-")
    jobs = default_jobs(PipelineConfig(top_n=3))  # dry-run trading: logs orders, places none
    jobs.register("screening", price_floor_screening)  # replace one job by name

    # The same builder `python -m hantu_sched run` uses: a sync client and an async factory.
    services = build_services(
        KISTarget(Env.PAPER, state_dir=pathlib.Path(data_dir, "kis-state")),
        Credentials(app.app_key, app.app_secret, app.account, source="the fake server"),
        clock,
        transport=fake.transport(),
        async_transport=fake.async_transport(),
    )
    try:
        storage = SQLiteStorage(data_dir)
        scheduler = IntegratedScheduler(
            config=SchedulerConfig(),
            storage=storage,
            clock=clock,
            jobs=jobs,
            data_dir=data_dir,
            services=services,
        )
        scheduler.run(until=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), KST))
        records = storage.list_jobs(day)
        storage.close()
    finally:
        services.close()

    records.sort(key=lambda r: (JOB_ORDER.index(r.key.job), r.key.batch or ""))
    for record in records:
        label = record.key.job + (f"[{record.key.batch}]" if record.key.batch else "")
        finished = f"{record.finished_at:%H:%M}" if record.finished_at else "--:--"
        print(f"{label:<14} {record.state.value:<8} finished {finished}")
    done = sum(r.state.value == "done" for r in records)
    print(f"day complete: {done}/{len(records)} units done (data in {data_dir})")


if __name__ == "__main__":
    main()
