"""Redis connections (`redis_connections`): how close a Redis is to maxclients and who holds its connections
(INFO clients and stats, CLIENT LIST grouped by client name, address, idle time and last command), what to change in
the pools, and whether to end idle connections of configured client names.

``settings`` checks the configuration and applies Params (tighten only); ``clients`` parses CLIENT LIST, groups it
and chooses who may be ended; ``health`` judges the figures and advises on pools; ``report`` the report's lines;
``steps`` holds the task bodies.
"""
