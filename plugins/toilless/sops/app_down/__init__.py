"""App down (`app_down`): decides whether the measured value of a target has reached the threshold that calls for the
action, and reports what it found and did. (Written by the scaffold: say in one paragraph what this SOP decides.)

``decide`` holds the judgement (pure: no Airflow, no network); ``steps`` holds the task bodies.
"""
