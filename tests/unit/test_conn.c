/* placeholder until the conn tests land */
#include "suites.h"
Suite *conn_suite(void) { return suite_create("conn"); }
