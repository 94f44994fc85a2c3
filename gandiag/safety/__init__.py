"""The boundary with the outside world: everything gandiag reads is untrusted.

- :mod:`.budgets`: named limits on what a file or a flag can make gandiag
  allocate, each raised by an environment variable;
- :mod:`.files`: input paths must be regular files (or folders), checked
  without opening, so a FIFO or a device never blocks or floods a run;
- :mod:`.text`: control characters from data never reach a terminal or an
  XML file.

docs/security.md is the threat model these modules implement.
"""
