"""AWS cost review (DAG ``aws_cost_review``): decides which AWS spend a person must look at this Monday or Friday.

Each service's month to date is compared with its baseline months as a daily run rate (``costs``), Cost Anomaly
Detection's anomalies since the last review are judged on the same percent and dollar thresholds (``anomalies``),
over the review period worked out in ``window`` from settings resolved in ``settings``. Each flagged finding becomes
a GitHub issue draft with a stable fingerprint so it is filed once (``issues``), and the findings go to Slack as one
ranked report (``report``) with a trend chart (``chart``). ``steps`` holds the task bodies, the only Airflow code.
"""
