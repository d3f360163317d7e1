"""docs/cli.md is generated from the commands' help texts and kept in step with them."""

from __future__ import annotations

from pathlib import Path

from traceview.clidoc import command_paths, render_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_cli_md_matches_the_help_texts() -> None:
    """Regenerate with: python -m traceview.clidoc > docs/cli.md"""
    assert (ROOT / "docs" / "cli.md").read_text() == render_markdown()


def test_every_command_has_help_and_a_section() -> None:
    text = render_markdown()
    for words in command_paths()[1:]:
        assert f"## `traceview {' '.join(words)}`" in text
    assert ["packs", "check"] in command_paths()
