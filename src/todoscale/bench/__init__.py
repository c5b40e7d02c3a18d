"""`todoscale bench`: the articles' scaling ladder, rung by rung, on the reader's machine.

An entry layer of its own: it starts the service's processes and reads its configuration,
and nothing in the service imports it.
"""
