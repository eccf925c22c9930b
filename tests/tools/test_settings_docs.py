"""The settings tables of docs/operations.md are exactly what the settings declarations say."""

from __future__ import annotations

import pytest

from tools.settings_docs import DOCUMENT, main, render, tables


def test_the_settings_tables_are_generated_from_the_declarations() -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    for name in tables():
        assert f"<!-- settings:{name} -->" in document, (
            f"{DOCUMENT.name} lacks the {name} settings table"
        )
    assert render(document) == document, "stale settings tables: run python -m tools.settings_docs"


def test_the_tables_live_in_the_operations_document() -> None:
    assert DOCUMENT.parent.name == "docs"
    assert DOCUMENT.name == "operations.md"


def test_shared_settings_are_listed_once() -> None:
    generated = tables()
    shared = generated["shared"]
    assert "`KAFKA_BOOTSTRAP_SERVERS`" in shared
    assert "`MEETINGS_TOPIC_PREFIX`" in shared
    assert "`LOG_FORMAT`" in shared
    for service in ("ingest", "processor"):
        assert "KAFKA_BOOTSTRAP_SERVERS" not in generated[service]


def test_an_unknown_marked_table_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown settings table 'nosuch'"):
        render("<!-- settings:nosuch -->\n<!-- /settings:nosuch -->\n")


def test_check_writes_nothing_and_passes_on_the_committed_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = DOCUMENT.read_text(encoding="utf-8")
    assert main(["--check"]) == 0
    assert DOCUMENT.read_text(encoding="utf-8") == before
    assert "up to date" in capsys.readouterr().out
