"""``python -m edgemood`` is the ``edgemood`` command."""

import sys

from edgemood.cli import main

sys.exit(main())
