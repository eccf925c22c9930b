"""The meetings pipeline ingest service."""
