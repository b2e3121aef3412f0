"""Comments, docstrings, proto comments and documents cite documents that are in the repository: every
`*.md` they name exists inside the repository (from its root, or next to the citing file), and nothing points
outside it (the team's shared specs, machine paths)."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

from .conftest import ROOT

CITED = re.compile(r"(?<![\w/.:@-])((?:\.\.?/)?(?:[\w.-]+/)*[\w.-]+\.md)\b")
OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w.])/work/")
SKIPPED = ("tests/data/", "src/tcxhooks/v1/")


def _files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in sorted(set(listed)) if not name.startswith(SKIPPED) and (ROOT / name).is_file()]


def _python_prose(text: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a module."""
    found = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found += [(first.lineno + i, line) for i, line in enumerate(first.value.value.splitlines())]
    return sorted(found)


def _prose(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return _python_prose(text)
    lines = list(enumerate(text.splitlines(), 1))
    if path.suffix == ".md":
        return lines
    if path.suffix == ".proto":
        return [(n, line.split("//", 1)[1]) for n, line in lines if "//" in line]
    if path.suffix in (".yaml", ".yml", ".ini", ".toml") or path.name == "Dockerfile":
        return [(n, line.split("#", 1)[1]) for n, line in lines if "#" in line]
    return []


def _inside(root: Path, candidate: Path) -> bool:
    """Whether `candidate` exists within `root` (a `../` that leaves the repository does not count, even
    when a file is there on this machine)."""
    return candidate.exists() and candidate.resolve().is_relative_to(root.resolve())


def _problems(path: Path, root: Path = ROOT) -> list[str]:
    out = []
    for number, line in _prose(path):
        where = f"{path.relative_to(root)}:{number}"
        for match in CITED.finditer(line):
            cited = match.group(1)
            if re.search(r"'s `?$", line[: match.start()]):
                continue  # another project's file: "gRPC's `doc/fork_support.md`"
            if not (_inside(root, root / cited) or _inside(root, path.parent / cited)):
                out.append(f"{where}: cites {cited}, which is not in the repository")
        out += [f"{where}: points outside the repository: {m.group()}" for m in OUTSIDE.finditer(line)]
    return out


def test_cited_documents_exist() -> None:
    problems = [p for path in _files() for p in _problems(path)]
    assert not problems, "\n".join(problems)


def test_the_check_finds_what_it_must(tmp_path: Path) -> None:
    # a repository with the shared specs beside it, as on a machine that has them: citing them still fails
    root = tmp_path / "repo"
    for name in ("docs/3cx.md", "../shared/specs/3cx-v20.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# a document\n", encoding="utf-8")
    source = root / "services" / "monitor" / "capture" / "probe.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        '"""See docs/3cx.md §2 and docs/nowhere.md."""\n# from ../shared/specs/3cx-v20.md §4\n'
        'NAME = "not-a-comment.md"\n',
        encoding="utf-8",
    )
    proto = root / "proto" / "events.proto"
    proto.parent.mkdir()
    proto.write_text(
        "// A call event of webhooks.md §3 (docs/3cx.md §2).\nstring name = 1;  // see docs/3cx.md\n"
        'option x = "quoted.md";\n',
        encoding="utf-8",
    )
    assert [p.split(": ", 1)[1] for p in _problems(source, root)] == [
        "cites docs/nowhere.md, which is not in the repository",
        "cites ../shared/specs/3cx-v20.md, which is not in the repository",
        "points outside the repository: ../shared",
    ]
    assert [p for p in _problems(proto, root)] == [
        "proto/events.proto:1: cites webhooks.md, which is not in the repository"
    ]
