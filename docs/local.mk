dist_man_MANS += docs/man/posternd.8 docs/man/posternctl.8 docs/man/postern.conf.5
EXTRA_DIST += docs/architecture.md docs/module-api.md
