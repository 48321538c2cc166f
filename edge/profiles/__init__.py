"""The built-in reader profiles, one YAML file per zone role (package data).

This directory is what ``edge.profile.load_profile`` reads by default through
``importlib.resources``, so the profiles travel with every kind of install.
``firmware-config/profiles`` in the repository is a link to it, and
``firmware-config/README.md`` documents the format.
"""
