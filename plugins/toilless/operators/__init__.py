"""Operators of the Toilless shared library (laid out like an Airflow provider)."""
