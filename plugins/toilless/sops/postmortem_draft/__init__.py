"""postmortem_draft: the post-mortem template filled from an incident's timeline (template.py, pure), filed once
per incident as a GitHub issue under the infrastructure epic and posted to the incident channel (steps.py)."""
