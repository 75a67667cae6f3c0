/* placeholder until the module_loader tests land */
#include "suites.h"
Suite *module_loader_suite(void) { return suite_create("module_loader"); }
