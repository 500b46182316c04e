import sys

from bankcdc_stack.cli import main

sys.exit(main())
