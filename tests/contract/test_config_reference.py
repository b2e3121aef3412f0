"""docs/config.md is the configuration reference written from the settings classes: it lists every key
with its default, environment variable and meaning, and cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcxhooks.configdoc import render, section_doc
from tcxhooks.platform.config import keys_of
from tcxhooks.product import load_product, owned_sections

ROOT = Path(__file__).resolve().parents[2]


def test_docs_config_md_is_what_the_code_says() -> None:
    written = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert written == render(), "docs/config.md is stale: run python -m tcxhooks.configdoc --write docs/config.md"


def test_every_section_and_key_says_what_it_is() -> None:
    for cls in owned_sections():
        assert section_doc(cls), f"[{cls.SECTION}] ({cls.__name__}) has no docstring"
        for name, f in keys_of(cls).items():
            assert f.metadata["doc"], f"[{cls.SECTION}] {name} has no meaning"


def test_every_key_appears_with_its_variable() -> None:
    written = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert "| `link_secret` | — | `TCXH_RECORDINGS_LINK_SECRET` (or `…_FILE`) |" in written
    assert "`TCXH_WEBHOOK_URL`, `TCXH_WEBHOOK_<NAME>_URL`" in written
    assert "| `poll_interval` | `5` | `TCXH_PBX_POLL_INTERVAL` |" in written
    for cls in owned_sections():
        for name in keys_of(cls):
            assert f"| `{name}` |" in written


def test_the_readme_example_is_a_complete_first_install(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every service starts from the README's example (its placeholder secrets filled in), warning about nothing."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("```ini\n", 1)[1].split("```", 1)[0]
    assert "docs/config.md" in readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for needed in ("link_secret", "listen", "local_dir", "public_url", "client_secret", "[webhook]", "[store]"):
        assert needed in example
    (tmp_path / "tcxhooks.ini").write_text(example, encoding="utf-8")
    secret = {"TCXH_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    with caplog.at_level("WARNING"):
        product = load_product(str(tmp_path / "tcxhooks.ini"), env=secret)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert product.media.recordings.link_secret and product.platform.services.token
