/*
 * outage.c - see outage.h.
 */
#include "outage.h"

#include <string.h>

const sb_outage *sb_outage_find(sb_outages *os, sb_prov_id p, sb_kind k, uint64_t now_ms)
{
    sb_outage *o = &os->o[p][k];

    if (!o->on)
        return NULL;
    if (o->until_ms != 0 && now_ms >= o->until_ms) {
        o->on = false;
        return NULL;
    }
    return o;
}

size_t sb_outage_set(sb_outages *os, sb_prov_id p, sb_kind k, const sb_outage *o)
{
    size_t n = sb_prov_count(), covered = 0, i, j;

    for (i = 0; i < n; i++) {
        if (p != SB_PROV_ALL && p != i)
            continue;
        for (j = 0; j < SB_KINDS; j++) {
            if ((k != SB_KINDS && k != j) || !sb_prov_has_kind((sb_prov_id)i, (sb_kind)j))
                continue;
            if (o != NULL) {
                os->o[i][j] = *o;
                os->o[i][j].on = true;
            } else {
                os->o[i][j].on = false;
            }
            covered++;
        }
    }
    return covered;
}

void sb_outages_reset(sb_outages *os)
{
    memset(os, 0, sizeof(*os));
}

/* One entry of sb_outages_json. */
static cJSON *outage_json(sb_prov_id p, sb_kind k, const sb_outage *o, uint64_t now_ms)
{
    cJSON *e = sb_json_obj1("provider", sb_prov_name(p));

    if (e == NULL || cJSON_AddStringToObject(e, "kind", sb_kind_name(k)) == NULL ||
        cJSON_AddNumberToObject(e, "status", o->status) == NULL ||
        (o->retry_after[0] != '\0' &&
         cJSON_AddStringToObject(e, "retry_after", o->retry_after) == NULL) ||
        (o->until_ms == 0 ? cJSON_AddNullToObject(e, "remaining_ms")
                          : cJSON_AddNumberToObject(e, "remaining_ms",
                                                    (double)(o->until_ms - now_ms))) == NULL) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

cJSON *sb_outages_json(sb_outages *os, uint64_t now_ms)
{
    cJSON *arr = cJSON_CreateArray(), *e;
    size_t n = sb_prov_count(), i, j;
    const sb_outage *o;

    for (i = 0; arr != NULL && i < n; i++) {
        for (j = 0; j < SB_KINDS; j++) {
            o = sb_outage_find(os, (sb_prov_id)i, (sb_kind)j, now_ms);
            if (o == NULL)
                continue;
            e = outage_json((sb_prov_id)i, (sb_kind)j, o, now_ms);
            if (e == NULL || !cJSON_AddItemToArray(arr, e)) {
                cJSON_Delete(e);
                cJSON_Delete(arr);
                return NULL;
            }
        }
    }
    return arr;
}
