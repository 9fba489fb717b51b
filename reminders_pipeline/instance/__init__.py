"""Instance settings shipped as package data (dagster.yaml)."""
