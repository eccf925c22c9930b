"""``python -m bench --write-docs``: the report replaces the marked section, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.docs import BEGIN, END, write_report


def test_the_report_replaces_the_marked_section_whole(tmp_path: Path) -> None:
    document = tmp_path / "performance.md"
    document.write_text(f"# Performance\n\nprose\n\n{BEGIN}\nold report\n{END}\n\nmore prose\n")
    write_report(["line one", "  line two"], document)
    text = document.read_text()
    assert "old report" not in text
    assert text.startswith("# Performance\n\nprose\n\n")
    assert text.endswith("\n\nmore prose\n")
    assert "```text\nline one\n  line two\n```" in text
    write_report(["newer"], document)
    assert text.count(BEGIN) == document.read_text().count(BEGIN) == 1
    assert "line one" not in document.read_text()


def test_a_document_without_the_markers_is_not_rewritten(tmp_path: Path) -> None:
    document = tmp_path / "performance.md"
    document.write_text("# Performance\n")
    with pytest.raises(ValueError, match="no"):
        write_report(["line"], document)
    assert document.read_text() == "# Performance\n"
