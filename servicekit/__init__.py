"""Plumbing shared by the two services: settings from the environment, logging, Kafka clients.

Not part of the contract (that is ``schemas``) and never imports a tool.
"""
