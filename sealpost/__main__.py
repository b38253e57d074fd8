from sealpost.cli import main

raise SystemExit(main())
