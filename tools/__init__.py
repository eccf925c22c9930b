"""Development tools: what the containers do not run."""
