import sys

from audiotools.cli import main

sys.exit(main())
