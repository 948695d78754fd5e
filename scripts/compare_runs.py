"""Same as ``ssl-hybrid-compare``: python scripts/compare_runs.py logs/train/multiruns/<sweep> [--x model.alpha]"""

import sys

from ssl_hybrid.compare import main

if __name__ == "__main__":
    sys.exit(main())
