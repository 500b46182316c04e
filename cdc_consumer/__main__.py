import sys

from cdc_consumer.cli import main

sys.exit(main())
