"""``python -m chdb_http``."""

import sys

from chdb_http.cli import main

sys.exit(main())
