from sas_core.cli import main

raise SystemExit(main())
