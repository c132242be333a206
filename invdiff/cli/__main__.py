"""``python -m invdiff.cli``: the ``invdiff`` command."""

import sys

from . import main

sys.exit(main())
