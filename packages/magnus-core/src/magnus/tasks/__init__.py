"""Task types: how a task node's ``command`` is run (``command_type: python | shell | ...``)."""
