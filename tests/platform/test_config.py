"""Config validation through the real CLI: a bad value exits 2 with one line naming file/section/key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tcxhooks.dispatcher.config import DispatcherSettings
from tcxhooks.media.config import MediaSettings
from tcxhooks.monitor.config import MonitorSettings
from tcxhooks.platform.config import ConfigError, load_config
from tcxhooks.platform.settings import PlatformSettings
from tcxhooks.product import load_product

GOOD = """
[pbx]
url = https://pbx.example.com
client_id = crmhooks
client_secret = s3cr3t-pbx-key

[webhook]
url = https://crm.example.com/3cx
secret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

[webhook:backup]
url = http://10.0.0.5/hooks
format = json
events = call.ended, recording.ready
"""


def run_up(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tcxhooks up --only` a service that fails config validation never starts anything."""
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TCXH_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tcxhooks", "up", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tcxhooks.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads_every_endpoint(tmp_path: Path) -> None:
    config = load_product(str(write(tmp_path, GOOD)), env={})
    webhooks = config.dispatcher.webhooks
    assert [w.name for w in webhooks] == ["default", "backup"]
    assert webhooks[1].format == "json"
    assert webhooks[1].events == ("call.ended", "recording.ready")
    assert config.monitor.pbx.poll_interval == 5.0
    assert config.media.recordings.purge_at.strftime("%H:%M") == "03:00"
    assert config.platform.store.url == "sqlite:///./data/tcxhooks.db"


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("pbx", "poll_interval = soon", "[pbx] poll_interval = 'soon': expected a duration"),
        ("pbx", "url = ftp://pbx", "[pbx] url = 'ftp://pbx': expected an http:// or https:// URL"),
        ("webhook", "format = xml", "[webhook] format = 'xml': expected form or json"),
        ("events", "language = de", "[events] language = 'de': expected ru or en"),
        ("recordings", "purge_at = 25:99", "[recordings] purge_at = '25:99': expected a local time HH:MM"),
        ("recordings", "retention_days = -1", "[recordings] retention_days = '-1': expected a whole number from 1 up"),
        ("metrics", "port = 70000", "[metrics] port = '70000': expected a whole number from 0 to 65535"),
        ("store", "url = mysql://x", "[store] url = 'mysql://x': expected sqlite:///"),
        ("services", "dispatcher = nowhere", "[services] dispatcher = 'nowhere': expected host:port"),
    ],
)
def test_bad_value_exits_2_with_one_line(tmp_path: Path, section: str, line: str, expected: str) -> None:
    key = line.split(" = ")[0]
    if f"[{section}]\n" in GOOD:  # replace the key inside its section (first occurrence after the header)
        head, _, tail = GOOD.partition(f"[{section}]\n")
        tail = re.sub(rf"^{key} = .*$\n?", "", tail, count=1, flags=re.M)
        text = f"{head}[{section}]\n{line}\n{tail}"
    else:
        text = GOOD + f"\n[{section}]\n{line}\n"
    path = write(tmp_path, text)
    result = run_up(path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "bad configuration" in line or line.startswith(str(path))]
    assert len(errors) == 1, result.stderr
    assert str(path) in errors[0] and expected in errors[0], result.stderr


def test_env_override_wins_and_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = run_up(path, {"TCXH_WEBHOOK_BACKUP_TIMEOUT": "forever"})
    assert result.returncode == 2
    assert "[webhook:backup] timeout = 'forever' (from env TCXH_WEBHOOK_BACKUP_TIMEOUT)" in result.stderr
    config = load_product(str(path), env={"TCXH_PBX_POLL_INTERVAL": "2m", "TCXH_WEBHOOK_FORMAT": "json"})
    assert config.monitor.pbx.poll_interval == 120.0
    assert config.dispatcher.webhooks[0].format == "json"


def test_env_only_endpoint_and_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "pbx-secret"
    secret_file.write_text("from-a-mounted-secret\n")
    config = load_product(
        str(write(tmp_path, GOOD)),
        env={
            "TCXH_WEBHOOK_CRM2_URL": "https://crm2.example.com/hook",
            "TCXH_PBX_CLIENT_SECRET_FILE": str(secret_file),
        },
    )
    assert [w.name for w in config.dispatcher.webhooks] == ["default", "backup", "crm2"]
    assert config.monitor.pbx.client_secret == "from-a-mounted-secret"


def test_missing_required_keys_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[log]\nlevel = info\n")
    result = run_up(path)
    assert result.returncode == 2
    assert f"{path}: [pbx] url is missing" in result.stderr
    assert f"{path}: [webhook] url is missing" in result.stderr


def test_secrets_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "not-a-whsec-value"))
    result = run_up(path)
    assert result.returncode == 2
    assert "[webhook] secret = ***: expected whsec_" in result.stderr
    assert "not-a-whsec-value" not in result.stderr + result.stdout
    config = load_product(str(write(tmp_path, GOOD)), env={}).config
    assert "s3cr3t-pbx-key" not in str(config.redacted())


def test_unknown_key_is_warned_not_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_product(str(write(tmp_path, GOOD + "\n[recordings]\nretension_days = 30\n")), env={})
    assert "[recordings] unknown key 'retension_days' ignored (typo?)" in caplog.text


def test_key_set_twice(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[pbx\] url is set twice \(line 4\)"):
        load_product(str(write(tmp_path, GOOD.replace("client_id", "url"))), env={})


def test_not_an_ini_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid ini file"):
        load_product(str(write(tmp_path, "this is not = an ini\n[[[")), env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_product(str(tmp_path / "missing.ini"), env={})


def test_store_password_never_logged(tmp_path: Path) -> None:
    config = load_product(str(write(tmp_path, GOOD)), env={"TCXH_STORE_URL": "postgresql://tcx:pa55word@db/tcx"}).config
    assert config.redacted()["store"]["url"] == "postgresql://tcx:***@db/tcx"
    assert "pa55word" in config.secrets()
    default = load_product(str(write(tmp_path, GOOD)), env={"TCXH_STORE_URL": "sqlite:///./data/t.db"}).config
    assert default.redacted()["store"]["url"] == "sqlite:///./data/t.db"


def test_credentials_in_a_webhook_url_never_logged(tmp_path: Path) -> None:
    url = "https://crm:hunter22@crm.example.com/3cx?api_key=k3y-k3y-k3y&x=json"
    ini = GOOD.replace("url = https://crm.example.com/3cx", f"url = {url}")
    config = load_product(str(write(tmp_path, ini)), env={}).config
    assert config[DispatcherSettings].webhooks[0].url == url
    assert config.redacted()["webhook"]["url"] == "https://crm:***@crm.example.com/3cx?api_key=***&x=***"
    assert {"hunter22", "k3y-k3y-k3y"} <= set(config.secrets()) and "json" not in config.secrets()


def test_store_password_kept_out_of_errors_and_read_from_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as bad:
        load_product(str(write(tmp_path, GOOD)), env={"TCXH_STORE_URL": "postgresq://tcx:pa55word@db/tcx"})
    assert "pa55word" not in str(bad.value) and "postgresq://tcx:***@db/tcx" in str(bad.value)
    secret = tmp_path / "store-url"
    secret.write_text("postgresql://tcx:pa55word@db/tcx\n")
    config = load_product(str(write(tmp_path, GOOD)), env={"TCXH_STORE_URL_FILE": str(secret)})
    assert config.platform.store.url == "postgresql://tcx:pa55word@db/tcx"


def test_each_service_loads_only_its_settings_and_warns_about_its_own_sections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The monitor reads [recordings] enabled (a view of media's section) but leaves its typos to media."""
    path = str(write(tmp_path, GOOD + "\n[recordings]\nenabled = false\nretension_days = 30\n[recordngs]\n"))
    monitor = load_config(path, (PlatformSettings, MonitorSettings), env={})
    assert monitor[MonitorSettings].recordings.enabled is False
    with pytest.raises(KeyError):
        monitor[DispatcherSettings]
    assert "retension_days" not in caplog.text
    assert "unknown section [recordngs] ignored" in caplog.text
    caplog.clear()
    load_config(path, (PlatformSettings, MediaSettings), env={})
    assert "[recordings] unknown key 'retension_days' ignored (typo?)" in caplog.text


def test_a_service_requires_only_its_own_keys(tmp_path: Path) -> None:
    path = str(write(tmp_path, "[log]\nlevel = info\n"))
    load_config(path, (PlatformSettings, MediaSettings), env={})
    with pytest.raises(ConfigError, match=r"\[webhook\] url is missing") as missing:
        load_config(path, (PlatformSettings, DispatcherSettings), env={})
    assert "[pbx]" not in str(missing.value)


def test_every_view_matches_the_owners_key() -> None:
    """A service reading a key of another's section declares it with the owner's default and type."""
    from dataclasses import fields as dataclass_fields

    from tcxhooks.platform.config import SECTION_NAMES, keys_of, sections_of
    from tcxhooks.product import SETTINGS, owned_sections

    owners = {cls.SECTION: cls for cls in owned_sections()}
    assert sorted(owners) == sorted(SECTION_NAMES), "the platform's section names are every service's sections"
    views = [cls for settings in SETTINGS.values() for cls in sections_of(settings).values() if not cls.OWNED]
    assert views
    for view in views:
        owner_keys = keys_of(owners[view.SECTION])
        types = {f.name: f.type for f in dataclass_fields(owners[view.SECTION])}
        for name, f in keys_of(view).items():
            assert name in owner_keys, f"{view.__name__} reads [{view.SECTION}] {name}, which its owner lacks"
            assert f.metadata["raw_default"] == owner_keys[name].metadata["raw_default"], (view, name)
            assert f.type == types[name], (view, name)


def test_strict_filters_name_the_key_and_what_is_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD.replace(
            "events = call.ended, recording.ready",
            "events = call.end, recording\nqueues = Sales, 800\nusers = 101, abc\ndids = +74951234567, 7 495",
        ),
    )
    result = run_up(path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if str(path) in line]
    events = next(line for line in lines if "[webhook:backup] events = 'call.end, recording'" in line)
    assert "call.end is none of: ringing," in events and "call.ended" in events and "recording.ready" in events
    assert any(
        "[webhook:backup] queues = 'Sales, 800': expected queue numbers (digits), e.g. 800; Sales is not" in line
        for line in lines
    )
    assert any("[webhook:backup] users = '101, abc'" in line and "abc is not" in line for line in lines)
    assert any("[webhook:backup] dids = '+74951234567, 7 495'" in line and "7 495 is not" in line for line in lines)


def test_every_event_the_dispatcher_renders_has_names_a_filter_accepts() -> None:
    from tcxhooks.dispatcher.payloads import EVENT_NAMES, event_names
    from tcxhooks.v1 import common_pb2, events_pb2

    events = [
        events_pb2.Event(call=events_pb2.CallEvent(type=kind, direction=direction))
        for kind in events_pb2.CallEventType.values()
        if kind
        for direction in (common_pb2.DIRECTION_INCOMING, common_pb2.DIRECTION_OUTGOING)
    ]
    events += [
        events_pb2.Event(status=events_pb2.StatusEvent(type=kind))
        for kind in events_pb2.StatusEventType.values()
        if kind
    ]
    payloads = [
        f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields if f.name not in ("call", "status")
    ]
    for name in payloads:
        event = events_pb2.Event()
        getattr(event, name).SetInParent()
        events.append(event)
    for event in events:
        assert set(event_names(event)) <= set(EVENT_NAMES), event


def test_unknown_keys_are_warned_about_under_the_section_as_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_product(str(write(tmp_path, GOOD + "\n[webhook:sales]\nurl = http://10.0.0.6/\nqueue = 800\n")), env={})
    assert "[webhook:sales] unknown key 'queue' ignored (typo?)" in caplog.text
