"""Local stand-ins for the real things Toilless acts on: a Slack sink, a moto server for AWS, and whatever each SOP adds.

Used by ``make run`` (``python -m sandbox run``) and by the tests, which start the same servers on free ports.
"""
