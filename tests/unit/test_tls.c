/* placeholder until the tls tests land */
#include "suites.h"
Suite *tls_suite(void) { return suite_create("tls"); }
