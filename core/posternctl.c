#include <stdio.h>
int main(void) { fputs("posternctl: not built yet\n", stderr); return 1; }
