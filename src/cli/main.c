#include "gemmnet/gemmnet.h"
#include <stdio.h>
int main(void) { printf("gemmnet %s\n", GN_VERSION); return 0; }
