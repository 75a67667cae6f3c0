# Protocol modules. Each is modules/NAME.la with its sources in modules/NAME/;
# libtool puts every NAME.so in modules/.libs/, which the dev config uses as
# its module_dir, and `make install` puts them in $(moduledir).
