"""Reads a Dockerfile and a .dockerignore the way `docker build` does, for static checks.

stages = parse_dockerfile(Path("Dockerfile"))
stages[-1].instructions("CMD")[0].exec_form()  # ["up"]
ignored(".dockerignore patterns", "src/tcxhooks/v1/events_pb2.py")
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's argument list; a shell form is an error for these checks."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text.split("CMD", 1)[1]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise AssertionError(f"line {self.line}: {self.keyword} is not in exec (JSON) form") from None
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
            f"line {self.line}: not a string list"
        )
        return value

    def flags(self) -> dict[str, str]:
        """`--name=value` flags before the arguments (COPY --from, HEALTHCHECK --interval, RUN --mount)."""
        found: dict[str, str] = {}
        for token in shlex.split(self.args):
            if not token.startswith("--"):
                break
            name, _, value = token[2:].partition("=")
            found[name] = value
        return found

    def operands(self) -> list[str]:
        """Arguments after the flags (COPY sources + destination)."""
        tokens = shlex.split(self.args)
        while tokens and tokens[0].startswith("--"):
            tokens.pop(0)
        return tokens


@dataclass
class Stage:
    base: str
    name: str
    items: list[Instruction] = field(default_factory=list)

    def instructions(self, keyword: str) -> list[Instruction]:
        return [i for i in self.items if i.keyword == keyword]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        lines.append((start, buffer + stripped))
        buffer = ""
    assert not buffer, "Dockerfile ends inside a continued line"
    return lines


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages in order; FROM's `${ARG}` references are resolved from the global ARG defaults."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = text.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], args.split()[0])
            name = args.split()[2] if len(args.split()) == 3 and args.split()[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(image, name))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may come before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].items.append(Instruction(keyword, args, line))
    return stages


def read_dockerignore(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def _matches(pattern: str, relpath: str) -> bool:
    regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    # A pattern naming a directory excludes everything below it.
    return re.fullmatch(regex + "(?:/.*)?", relpath) is not None


def ignored(patterns: list[str], relpath: str) -> bool:
    """Whether the build context leaves `relpath` out (last matching pattern wins; `!` re-includes)."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _matches(pattern.lstrip("!"), relpath):
            result = not negate
    return result


def context_files(root: Path, patterns: list[str]) -> list[str]:
    """Every file of the build context, as paths relative to `root` (ignored folders are not walked)."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not ignored(patterns, str(rel / d))]
        found.extend(str(rel / f) for f in files if not ignored(patterns, str(rel / f)))
    return sorted(found)
