"""After a restart or a takeover, an unsettled order's settle window runs from the latest moment
it can have left the client that journalled it (intent + MAX_SEND_DELAY_S), never from "now":
that process may be alive and cut off from the journal while its request is still in flight."""

from __future__ import annotations

import datetime as dt

from hantu_sched.pipeline._orders import MAX_SEND_DELAY_S, record_request

KST = dt.timezone(dt.timedelta(hours=9))
INTENT = dt.datetime(2026, 6, 4, 9, 0, 5, tzinfo=KST)


def record(**extra: object) -> dict[str, object]:
    return {"code": "005930", "side": "buy", "quantity": 3, "price": 71000, "status": "intent",
            "intent_at_kis": INTENT.isoformat(), **extra}  # fmt: skip


def test_a_takeover_soon_after_the_intent_waits_for_the_whole_send_delay() -> None:
    took_over = INTENT + dt.timedelta(seconds=35)  # a 30 s lease lapsed
    request = record_request(record(), now_kis=took_over)
    assert dt.datetime.fromisoformat(request["sent_by_kis"]) == INTENT + dt.timedelta(
        seconds=MAX_SEND_DELAY_S
    )


def test_a_late_restart_does_not_wait_beyond_the_bound() -> None:
    late = INTENT + dt.timedelta(hours=1)
    request = record_request(record(), now_kis=late)
    assert request["sent_by_kis"] == (INTENT + dt.timedelta(seconds=MAX_SEND_DELAY_S)).isoformat()


def test_without_an_intent_time_the_window_runs_from_now_and_a_known_send_time_wins() -> None:
    now = INTENT + dt.timedelta(seconds=10)
    assert record_request(record(intent_at_kis=None), now_kis=now)["sent_by_kis"] == now.isoformat()
    sent = (INTENT + dt.timedelta(seconds=1)).isoformat()
    request = record_request(record(sent_at_kis=sent), now_kis=now)
    assert "sent_by_kis" not in request  # the client measured the send: its window is exact
    assert request["sent_at_kis"] == sent
