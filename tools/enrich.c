#include "enrich/enrich.h"
int main(void) { return 0; }
