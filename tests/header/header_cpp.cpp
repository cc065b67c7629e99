// Header hygiene: each public header (ENRICH_HEADER_UNDER_TEST first, alone)
// compiles as C++ (extern "C", no C-only constructs), and links: C++ name
// mangling must not apply to the API.
#include ENRICH_HEADER_UNDER_TEST

#include "enrich/aws.h"
#include "enrich/delivery.h"
#include "enrich/enrich.h"

#include <cstring>

int main()
{
    enrich_buf b = {0, 0};
    enrich_ctx *ctx = 0;
    enrich_ctx_free(ctx);
    enrich_delivery *dlv = 0;
    if (enrich_delivery_close(dlv, 0) != ENRICH_OK)
        return 1;
    enrich_load_options lo = ENRICH_LOAD_OPTIONS_INIT;
    if (lo.version != ENRICH_LOAD_OPTIONS_VERSION || lo.key != 0)
        return 1;
    enrich_option opt = ENRICH_OPT_MAX_DEPTH;
    int64_t lo_v = 0, hi = 0;
    if (enrich_option_bounds(opt, &lo_v, &hi) != ENRICH_OK || lo_v != 1)
        return 1;
    if (std::strcmp(enrich_status_name(ENRICH_E_UTF8), "ENRICH_E_UTF8") != 0)
        return 1;
    if (enrich_aws_arrival_ms(ctx, 0) != -1 || enrich_aws_encode_bound(ctx, ENRICH_AWS_RESPONSE_PIPES) != 0)
        return 1;
    return enrich_version_number() == ENRICH_VERSION_NUMBER && b.len == 0 ? 0 : 1;
}
