"""incident_escalation: escalate unacknowledged incidents along the on-call ladder (toilless.incidents.escalation)
and drain this host's incident outbox. The judgement lives in toilless.incidents; steps.py is the Airflow side."""
