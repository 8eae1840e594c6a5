import sys

from ratelord.daemon.main import main

sys.exit(main())
