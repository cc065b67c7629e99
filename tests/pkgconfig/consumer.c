/* A program that knows libenrich only through pkg-config: built by
 * tests/pkgconfig/check_pc.sh with the flags of the generated .pc file.
 * It creates a store (LMDB, inside the library) and checks that the header
 * it compiled against matches the library it runs with. */
#include <enrich/enrich.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer NEW_STORE_FILE\n");
        return 2;
    }
    if (strcmp(enrich_version_string(), ENRICH_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: header %s, library %s\n", ENRICH_VERSION_STRING,
                enrich_version_string());
        return 1;
    }
    enrich_store *store = NULL;
    enrich_status st = enrich_store_open(argv[1], ENRICH_STORE_CREATE, &store);
    if (st != ENRICH_OK) {
        fprintf(stderr, "consumer: enrich_store_open(%s): %s\n", argv[1], enrich_strerror(st));
        return 1;
    }
    enrich_store_close(store);
    printf("consumer: libenrich %s\n", enrich_version_string());
    return 0;
}
