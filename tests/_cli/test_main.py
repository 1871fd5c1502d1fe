"""The ``napari-sam`` parser registers every sub-command and never hides a broken one."""

from __future__ import annotations

import argparse

import pytest

from napari_sam._cli import main as cli


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_every_listed_subcommand_is_registered():
    assert _subcommands(cli.build_parser()) == {name for name, _, _ in cli.COMMANDS}
    assert {"models", "data", "demo", "label", "embed"} <= {name for name, _, _ in cli.COMMANDS}


def test_a_subcommand_whose_module_is_missing_is_an_error_not_dropped(monkeypatch):
    missing = ("ghost", "napari_sam._cli.no_such_module", "a command whose module is gone")
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, missing])
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        cli.build_parser()
