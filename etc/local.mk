pkgsysconf_DATA = etc/postern.conf
EXTRA_DIST += etc/postern.conf etc/postern-dev.conf
