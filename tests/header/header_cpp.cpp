// Header hygiene: enrich.h compiles as C++ (extern "C", no C-only
// constructs), and links: C++ name mangling must not apply to the API.
#include "enrich/enrich.h"

#include <cstring>

int main()
{
    enrich_buf b = {0, 0};
    enrich_ctx *ctx = 0;
    enrich_ctx_free(ctx);
    enrich_option opt = ENRICH_OPT_MAX_DEPTH;
    int64_t lo = 0, hi = 0;
    if (enrich_option_bounds(opt, &lo, &hi) != ENRICH_OK || lo != 1)
        return 1;
    if (std::strcmp(enrich_status_name(ENRICH_E_UTF8), "ENRICH_E_UTF8") != 0)
        return 1;
    return enrich_version_number() == ENRICH_VERSION_NUMBER && b.len == 0 ? 0 : 1;
}
