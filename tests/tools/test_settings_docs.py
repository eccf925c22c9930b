"""The README's settings tables are exactly what the settings declarations say."""

from __future__ import annotations

from tools.settings_docs import README, render, tables


def test_readme_settings_tables_are_generated_from_the_declarations() -> None:
    readme = README.read_text(encoding="utf-8")
    for name in tables():
        assert f"<!-- settings:{name} -->" in readme, f"README lacks the {name} settings table"
    assert render(readme) == readme, "stale settings tables: run python -m tools.settings_docs"


def test_shared_settings_are_listed_once() -> None:
    generated = tables()
    shared = generated["shared"]
    assert "`KAFKA_BOOTSTRAP_SERVERS`" in shared
    assert "`MEETINGS_TOPIC_PREFIX`" in shared
    assert "`LOG_FORMAT`" in shared
    for service in ("ingest", "processor"):
        assert "KAFKA_BOOTSTRAP_SERVERS" not in generated[service]
