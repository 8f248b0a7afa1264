"""Every command-line flag of the project has help text that shows its default:
``python -m backend COMMAND``, ``backend/apply_ml_migration.py`` and the bench scripts.

Each parser is taken from the real entry point: ``parse_known_args`` (argparse's, which
every ``parse_args`` goes through) is replaced for the call by one that hands the parser
back before anything runs, so new commands and scripts are checked without a list here.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend import __main__ as cli

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# Actions whose default says nothing (a flag is off unless given; --help).
NO_DEFAULT = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
              argparse._VersionAction, argparse._StoreConstAction, argparse._CountAction,
              argparse._AppendConstAction, argparse._SubParsersAction)


class _Parser(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def parser_of(call: Callable[[], object], monkeypatch: pytest.MonkeyPatch
              ) -> argparse.ArgumentParser:
    def hand_back(self: argparse.ArgumentParser, *_a: object, **_k: object) -> None:
        raise _Parser(self)

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_known_args", hand_back)
        with pytest.raises(_Parser) as found:
            call()
    return found.value.parser


def commands(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The commands ``python -m backend`` lists when given an unknown one."""
    assert cli.main(["no-such-command"]) == 2
    listed = capsys.readouterr().err.rsplit("expected one of:", 1)[1]
    return re.findall(r"[a-z][a-z-]*", listed)


def bench_scripts() -> list[Path]:
    return sorted(p for p in BENCH.glob("*.py") if "argparse" in p.read_text())


def _load(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(f"bench_cli_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def actions(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action,
                                                              argparse.ArgumentParser]]:
    for action in parser._actions:
        yield parser.prog, action, parser
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from actions(sub)


def problems(parser: argparse.ArgumentParser) -> list[str]:
    found = []
    for prog, action, owner in actions(parser):
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            found.append(f"{prog} {name}: no help")
            continue
        if isinstance(action, NO_DEFAULT) or action.required:
            continue
        shown = owner._get_formatter()._expand_help(action)  # what --help prints
        if "default" not in shown.lower():
            found.append(f"{prog} {name}: help does not show the default ({shown!r})")
    return found


def test_every_backend_command_documents_its_flags(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    names = commands(capsys)
    assert {"serve", "migrate", "train", "evaluate", "track", "backtest"} <= set(names)
    bad = []
    for name in names:
        parser = parser_of(lambda name=name: cli.main([name]), monkeypatch)
        assert parser.description, name  # `--help` says what the command does
        bad += problems(parser)
    assert bad == []


def test_the_migration_script_documents_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.apply_ml_migration import main

    parser = parser_of(lambda: main([]), monkeypatch)
    assert "--export-supabase" in parser._option_string_actions
    assert problems(parser) == []


@pytest.mark.parametrize("script", bench_scripts(), ids=lambda p: p.name)
def test_every_bench_script_documents_its_flags(script: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load(script)
    monkeypatch.setattr(sys, "argv", [str(script)])
    parser = parser_of(lambda: module.main(), monkeypatch)
    assert problems(parser) == []


def test_the_checker_finds_a_flag_without_help(monkeypatch: pytest.MonkeyPatch) -> None:
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--quiet-one")
    p.add_argument("--n", type=int, default=3, help="how many")
    p.add_argument("--m", type=int, default=3, help="how many (default: %(default)s)")
    assert problems(p) == ["x --quiet-one: no help",
                           "x --n: help does not show the default ('how many')"]
