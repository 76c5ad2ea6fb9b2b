"""Incident drills (issue 21): ``python -m sandbox.drill [SCENARIO]``, ``make drill [SCENARIO=<name>]``.

Under ``sandbox/`` because a drill is the sandbox's own end-to-end exercise: it starts (or attaches to) what
``make run`` starts, uses the sandbox's published facts (ports, intake token) and its demo services, and nothing in
``plugins/`` or ``dags/`` imports it. See docs/drills.md.
"""
