"""docs/deployment.md stays true: its commands exist, its paths exist, its variables are config keys,
and its metrics reference lists exactly what the running services serve."""

from __future__ import annotations

import importlib.util
import re

from prometheus_client.parser import text_string_to_metric_families

from tcxhooks.cli import COMMANDS
from tcxhooks.platform.config import keys_of
from tcxhooks.product import SERVICES, load_product, owned_sections

from .conftest import ROOT, Live
from .envmap import check_env_names
from .test_k8s import HEALTH_PORT

DOC = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
FENCED = re.findall(r"^```[a-z]*\n(.*?)^```", DOC, re.S | re.M)
SPANS = re.findall(r"`([^`\n]+)`", re.sub(r"^```[a-z]*\n.*?^```", "", DOC, flags=re.S | re.M)) + FENCED


def test_every_tcxhooks_command_exists() -> None:
    commands = {m for span in SPANS for m in re.findall(r"(?<![\w-])tcxhooks (\w+)", span)}
    assert commands
    for command in commands:
        assert command in COMMANDS, command
        assert importlib.util.find_spec(COMMANDS[command]) is not None, (
            f"tcxhooks {command}: {COMMANDS[command]} missing"
        )


def test_every_repository_path_exists() -> None:
    paths = {
        s.split(" ")[0].rstrip("/")
        for s in SPANS
        if re.fullmatch(r"(k8s|deploy|src|tests|docs)/[\w./<>-]+", s.split(" ")[0])
    }
    assert paths
    for path in paths:
        if "<" not in path:
            assert (ROOT / path).exists(), path


def test_every_variable_is_a_config_key() -> None:
    names = {m for span in SPANS for m in re.findall(r"\bTCXH_[A-Z0-9_]+\b", span)}
    assert len(names) > 10
    check_env_names(sorted(names))


def test_metrics_reference_lists_what_the_services_serve(live: Live) -> None:
    documented = {re.sub(r"_total$", "", m) for m in re.findall(r"^\| `((?:tcxhooks|grpc)_\w+)` \|", DOC, re.M)}
    served: set[str] = set()
    for service in live.metrics:
        served |= {
            f.name
            for f in text_string_to_metric_families(live.scrape(service))
            if f.name.startswith(("tcxhooks_", "grpc_")) and not f.name.endswith("_created")
        }
    own = {n for n in documented if not any(n.startswith(f"tcxhooks_{s}_") for s in SERVICES if s not in live.metrics)}
    assert own == served, f"undocumented: {sorted(served - own)}; not served: {sorted(own - served)}"


def test_the_readmes_security_section_names_every_port_and_key_it_relies_on() -> None:
    """The ports every service listens on by default (and the probes' port) are in its table; the keys it
    tells operators to set or rotate are real config keys of the service that owns them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    config = load_product(
        None,
        env={
            "TCXH_PBX_URL": "https://pbx.example.com",
            "TCXH_PBX_CLIENT_ID": "c",
            "TCXH_WEBHOOK_URL": "https://crm.example.com",
        },
    )
    ports = [config.platform.services.address(name).rpartition(":")[2] for name in SERVICES]
    assert f"| {min(ports)}-{max(ports)} |" in section
    assert f"| {config.platform.metrics.port} |" in section and f"| {HEALTH_PORT} (containers) |" in section
    assert f"| {config.media.recordings.listen.rpartition(':')[2]} |" in section
    for section_name, key in re.findall(r"`\[(\w+)\] (\w+)`", section):
        owners = [cls for cls in owned_sections() if section_name == cls.SECTION]
        assert owners and key in keys_of(owners[0]), f"[{section_name}] {key} is no config key"
    for key in ("token", "tls_cert", "tls_key", "tls_ca", "tls_client_auth", "link_secret_previous", "verify_tls"):
        assert f"`{key}" in section or f" {key}`" in section, key
