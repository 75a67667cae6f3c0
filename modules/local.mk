# Protocol modules. Each is modules/NAME.la with its sources, README.md,
# man page and build rules in modules/NAME/ (modules/NAME/local.mk).
# libtool puts every NAME.so in modules/.libs/, which the dev config uses as
# its module_dir; `make install` puts them in $(moduledir).
include modules/smtp/local.mk
include modules/queue-store/local.mk
include modules/pop3be/local.mk
include modules/pop3fe/local.mk
