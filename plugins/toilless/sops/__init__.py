"""One package per SOP, named after its dag_id: pure modules (no Airflow import) and steps.py (the task bodies)."""
