"""The errors every `zoo` command reports as one line (zoo.cli.app.main, the one handler), rather than a traceback.

CorpusError, CheckpointError and InputError are ValueErrors; OSError covers missing and unreadable files
and taken ports; ImportError an optional extra not installed (its message names the pip command).
ZOO_TRACEBACK=1 shows the traceback, for bug reports.
"""

from lightning.fabric.utilities.exceptions import MisconfigurationException

USER_ERRORS = (ValueError, OSError, ImportError, MisconfigurationException)
