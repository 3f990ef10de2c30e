from harness.proxy.run import main

raise SystemExit(main())
