/* placeholder until the str_json tests land */
#include "suites.h"
Suite *str_json_suite(void) { return suite_create("str_json"); }
