/* STUB CLI */
#include "upres.h"
#include <stdio.h>
int main(void) { printf("upres %s\n", upres_version()); return 0; }
