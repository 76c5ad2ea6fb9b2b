"""What every SOP shares: Slack output (escaped, within limits), secret redaction, and (as they move here) settings,
the action gate and run state. Nothing in this package imports Airflow at module level."""
