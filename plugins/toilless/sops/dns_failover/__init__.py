"""DNS failover (`dns_failover`): probes the active and standby DNS servers with real queries, decides whether to
fail over (at once when the active one is unreachable, after the SOP's wait when it is reachable but failing, never to
a standby that does not answer correctly), shuts down and fails over once per incident through the action gate,
verifies, and reports the timeline.

Pure modules: ``validation`` (DNS names, addresses, commands), ``settings`` (a run's settings), ``health`` (what the
answers mean), ``decide`` (what to do), ``failover`` (acting once per incident, provider passed in), ``logs``
(bounded log tails), ``messages`` (the report). ``providers`` wraps the hooks (dnsTool, Route 53); ``steps`` holds the
task bodies.
"""
