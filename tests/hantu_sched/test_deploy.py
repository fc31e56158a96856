"""The systemd unit: key settings, and an ExecStart the CLI accepts."""

from __future__ import annotations

import configparser
import pathlib
import shlex

from hantu_sched._cli import build_parser

UNIT = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "hantu-scheduler.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_unit_key_settings() -> None:
    service = _unit()["Service"]
    expected = {
        "MemoryMax": "800M",
        "Restart": "on-failure",
        "EnvironmentFile": "/etc/hantu/credentials.env",
        "KillSignal": "SIGTERM",
        "User": "hantu",
        "UMask": "0077",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }
    for key, value in expected.items():
        assert service.get(key) == value, key
    assert int(service["TimeoutStopSec"].rstrip("s")) >= 30
    writable = service["ReadWritePaths"].split()
    assert "/var/lib/hantu" in writable
    # The token store lives under a writable path.
    state = next(v for v in service["Environment"].split() if v.startswith("KIS_STATE_DIR="))
    assert any(state.split("=", 1)[1].startswith(path) for path in writable)
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_exec_start_is_accepted_by_the_cli() -> None:
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    assert argv[0].endswith("python") and argv[1:3] == ["-m", "hantu_sched"]
    args = build_parser().parse_args(argv[3:])  # parses without running anything
    assert args.command == "run"
    assert args.data_dir == "/var/lib/hantu"
    assert args.config == "/etc/hantu/config.toml"
    # The data dir in ExecStart is writable under ProtectSystem=strict.
    assert args.data_dir in _unit()["Service"]["ReadWritePaths"].split()
