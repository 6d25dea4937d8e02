/* Unit tests for src/core: limits, images, conversion, orientation, pool. */
#include "test.h"
#include "upres.h"

#include <string.h>

TEST(core_strerror_names_every_status)
{
    for (int s = 0; s >= UPRES_ERR_CANCELLED; s--)
        CHECKF(strcmp(upres_strerror(s), "unknown error") != 0, "status %d unnamed", s);
    CHECK(strcmp(upres_strerror(-999), "unknown error") == 0);
}
