"""Start the playground on localhost: ``python app.py --help`` lists the flags."""

import sys

from playground.cli import main

if __name__ == "__main__":
    sys.exit(main())
