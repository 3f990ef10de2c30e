from harness.server.mock import main

raise SystemExit(main())
