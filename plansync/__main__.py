import sys

from plansync.cli import main

sys.exit(main())
