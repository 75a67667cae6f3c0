/* placeholder until the config tests land */
#include "suites.h"
Suite *config_suite(void) { return suite_create("config"); }
