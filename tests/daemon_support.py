"""Run ``hantu_sched``'s daemon for paper trading against a fake KIS, on a fake clock."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import attrs

from hantu_sched import Clock, Credentials
from hantu_sched._cli import run_daemon
from hantu_sched._settings import Settings, load_credentials, load_settings
from kisclient.testing import FakeKIS

__all__ = ["PaperDaemon"]


@attrs.frozen
class PaperDaemon:
    """Settings and credentials of a paper account on *fake*, with its whole universe, a data
    directory ``<tmp>/d`` and a token store ``<tmp>/state``. :meth:`run` runs the daemon."""

    fake: FakeKIS
    settings: Settings
    credentials: Credentials

    @classmethod
    def create(cls, tmp_path: pathlib.Path, fake: FakeKIS) -> PaperDaemon:
        app = fake.add_app(env="paper")
        config = tmp_path / "c.toml"
        config.write_text(
            "[kis]\nenv = 'paper'\n[pipeline]\ntrading_mode = 'paper'\n"
            f"universe = {json.dumps(fake.universe)}\n"
        )
        env = {
            "KIS_APP_KEY": app.app_key,
            "KIS_APP_SECRET": app.app_secret,
            "KIS_ACCOUNT": app.account,
            "KIS_STATE_DIR": str(tmp_path / "state"),
        }
        settings = load_settings(config, env, data_dir=tmp_path / "d")
        credentials = load_credentials(settings, env)
        assert credentials is not None
        return cls(fake, settings, credentials)

    def run(self, clock: Clock, until: dt.datetime) -> int:
        """Run the daemon on *clock* until *until* (no signal handlers); its exit status."""
        return run_daemon(
            self.settings,
            self.credentials,
            clock=clock,
            until=until,
            transport=self.fake.transport(),
            async_transport=self.fake.async_transport(),
            signals=False,
        )
