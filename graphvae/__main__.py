from graphvae.cli import main

raise SystemExit(main())
