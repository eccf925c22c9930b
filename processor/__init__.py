"""The meetings pipeline processor service."""
