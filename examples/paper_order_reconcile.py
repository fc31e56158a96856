"""Place a paper order whose answer is lost, then reconcile it instead of resending.

    python examples/paper_order_reconcile.py

Needs only kisclient (``pip install ./dists/kisclient``); it uses the public API alone.

The fake KIS server executes the order and drops the connection before answering: the client
raises OrderOutcomeUnknown (it never resends an order that may have arrived), and
reconcile_order() finds the order among today's orders (FOUND; ABSENT would mean "certainly
never arrived", UNKNOWN "do not resend").
"""

from __future__ import annotations

import datetime as dt
import tempfile

from kisclient import KST, FakeClock, KISClient, OrderOutcomeUnknown
from kisclient.testing import FakeKIS, Fault

#: KIS's cash-order endpoint (the path of the request the fault below drops).
ORDER_CASH_PATH = "/uapi/domestic-stock/v1/trading/order-cash"


def main() -> None:
    clock = FakeClock(
        dt.datetime(2026, 11, 26, 10, 30, tzinfo=KST)
    )  # paper orders need market hours
    fake = FakeKIS(seed=3, clock=clock)
    app = fake.add_app(env="paper")
    fake.faults.add(Fault("drop_after", path=ORDER_CASH_PATH))
    with KISClient(
        app.app_key,
        app.app_secret,
        env="paper",
        account=app.account,
        clock=clock,
        state_dir=tempfile.mkdtemp(prefix="kis-example-"),
        transport=fake.transport(),
    ) as kis:
        try:
            kis.order_cash("buy", "005930", 10)
        except OrderOutcomeUnknown as unknown:
            print(f"outcome unknown: {unknown}")
            answer = kis.reconcile_order(unknown)
            order = answer.order
            if answer.absent:
                print("certainly not executed: safe to send again")
            elif order is None:
                print(f"outcome still unknown ({answer.reason}): do not send again")
            else:
                print(
                    f"found order {order.order_no}: {order.side} {order.quantity} x {order.code}, "
                    f"filled {order.filled_quantity}"
                )
        holdings = {h.code: h.quantity for h in kis.get_balance().holdings}
    print(f"holdings: {holdings}; orders the server executed: {len(fake.orders(app.app_key))}")


if __name__ == "__main__":
    main()
