#include <stdio.h>
int main(void) { fputs("posternd: not built yet\n", stderr); return 1; }
