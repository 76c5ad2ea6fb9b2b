"""oncall_handoff: the weekly on-call handoff (Monday 08:00 UTC): the past week's on-call log one entry per incident
in the seed template, recurring alerts ranked (toil candidates), open incidents, silences and maintenance ahead and a
self-check of the monitoring path. handoff.py builds it from plain data (pure); steps.py reads and posts."""
