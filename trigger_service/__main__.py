import sys

from trigger_service.cli import main

sys.exit(main())
