"""Redis memory (`redis_memory`): how close a Redis is to its memory limit and why (used vs maxmemory, evictions,
fragmentation, OOM errors, the biggest keys, keys without TTL by prefix), and whether to clean up keys without TTL
that nobody used for long, under configured prefixes only.

``settings`` checks the configuration and applies Params (tighten only); ``health`` judges the INFO figures;
``sampling`` is the bounded key sample; ``cleanup`` the batch loop of the cleanup; ``report`` the report's lines;
``steps`` holds the task bodies.
"""
