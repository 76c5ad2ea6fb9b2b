"""App down (`app_down`): verifies an application is unreachable, escalates at once, reads the rollout history and
logs, and rolls back a bad deploy, restarts a crash loop or scales a saturated Deployment through the action gate,
then proves the recovery.

``decide`` holds the judgement (down? which recovery?), ``settings`` the checks of configuration and Params,
``messages`` what people read (all pure: no Airflow, no network); ``steps`` holds the task bodies.
"""
