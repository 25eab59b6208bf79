"""``python -m audionet`` runs the command-line interface."""

from audionet.cli.main import main

raise SystemExit(main())
