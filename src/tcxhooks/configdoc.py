"""docs/config.md, written from the settings classes themselves (their docstrings and `key()` docs).

    python -m tcxhooks.configdoc --write docs/config.md     # after adding or changing a key

A test compares the file with `render()`, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import Field
from typing import Any

from .platform.config import ENV_PREFIX, URL_PASSWORD, Section, env_name, keys_of, sections_of
from .platform.configfile import CONFIG_VARIABLE, DEFAULT_FILE
from .product import SETTINGS, owned_sections

INTRO = f"""# Configuration reference

<!-- Written by `python -m tcxhooks.configdoc --write docs/config.md` from the settings classes
(services/<name>/config.py, src/tcxhooks/platform/settings.py); edit those, not this file. -->

One ini file configures every service; each reads the sections it needs. Every command (the
services, `up`, `check`, `deliveries`, `endpoints`, …) finds it the same way: `-c FILE`, else the
file named by `{CONFIG_VARIABLE}`, else `./{DEFAULT_FILE}` when the current folder has one. Without
any file the environment alone configures.

- **Environment.** Every key can be set by a variable `TCXH_<SECTION>_<KEY>`, which wins over the
  file: `[pbx] url` is `TCXH_PBX_URL`, `[webhook:crm2] url` is `TCXH_WEBHOOK_CRM2_URL` (such a
  variable alone defines the endpoint).
- **Secrets** (marked below) can also be read from a file named by `TCXH_<SECTION>_<KEY>_FILE`
  (Kubernetes and compose secrets). Their values never appear in logs or messages.
- **Mistakes stop the start.** A bad value, or a key a service cannot run without, stops it with
  exit code 2 and one line naming the file, the section, the key, the value (never a secret's)
  and what is expected. A key or section nobody knows is warned about (a typo), never silently
  ignored.
- **Durations** are written `5`, `5s`, `250ms`, `5m`, `2h` or `1d`; **lists** are comma separated.
"""


def _default(f: Field[Any]) -> str:
    raw = str(f.metadata["raw_default"])
    return f"`{raw}`" if raw else "—"


def _meaning(f: Field[Any]) -> str:
    secret = f.metadata["secret"]
    note = " (secret: its password and query values)" if secret == URL_PASSWORD else " (secret)" if secret else ""
    return str(f.metadata["doc"]) + note


def _env(cls: type[Section], name: str, secret: bool) -> str:
    variables = [env_name(cls.SECTION, name)]
    if cls.REPEATED:
        variables.append(f"{ENV_PREFIX}{cls.SECTION.upper()}_<NAME>_{name.upper()}")
    return ", ".join(f"`{v}`" for v in variables) + (" (or `…_FILE`)" if secret else "")


def _readers(cls: type[Section]) -> str:
    """Which services read the section: its owner, and those reading some of its keys through a view."""
    owner = ""
    views: list[str] = []
    for service, settings in SETTINGS.items():
        for section in sections_of(settings).values():
            if section.SECTION != cls.SECTION:
                continue
            if section is cls:
                owner = service
            elif not section.OWNED:
                views.append(f"{service} ({', '.join(keys_of(section))})")
    read = f"Read by the {owner} service" if owner else "Read by every service"
    return read + (f"; also by {', '.join(views)}" if views else "") + "."


def _title(cls: type[Section]) -> str:
    return f"[{cls.SECTION}] and [{cls.SECTION}:NAME]" if cls.REPEATED else f"[{cls.SECTION}]"


def section_doc(cls: type[Section]) -> str:
    """The section class's own docstring (a dataclass without one only has its generated signature)."""
    doc = cls.__doc__ or ""
    return "" if doc.startswith(f"{cls.__name__}(") else " ".join(doc.split())


def render() -> str:
    parts = [INTRO]
    for cls in owned_sections():
        rows = ["| key | default | environment | meaning |", "|---|---|---|---|"]
        for name, f in keys_of(cls).items():
            rows.append(f"| `{name}` | {_default(f)} | {_env(cls, name, bool(f.metadata['secret']))} | {_meaning(f)} |")
        parts.append(f"## {_title(cls)}\n\n{section_doc(cls)} {_readers(cls)}\n\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tcxhooks.configdoc", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="write the reference to FILE (default: print it)")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
