/*
 * providers.c - the provider table and what is derived from it: names,
 * kinds, states, target names and the providers' part of --help.  See
 * prov.h.
 */
#include "prov.h"

#include <errno.h>
#include <http_parser.h>
#include <string.h>
#include <strings.h>

/*
 * The providers, one line each: X(NAME) is the descriptor sb_prov_NAME
 * defined in prov_NAME.c.  The order is the order of --help and of the
 * statistics.  Adding a provider = one prov_NAME.c + one line here.
 */
#define SB_PROVIDER_LIST(X)                                                                        \
    X(intronis)                                                                                    \
    X(activeplatform)                                                                              \
    X(keliweb)                                                                                     \
    /* one line per provider, above this one */

#define DECLARE(name) extern const sb_prov sb_prov_##name;
SB_PROVIDER_LIST(DECLARE)
#undef DECLARE

#define ENTRY(name) &sb_prov_##name,
static const sb_prov *const table[] = {SB_PROVIDER_LIST(ENTRY)};
#undef ENTRY

_Static_assert(SB_ARRAY_LEN(table) <= SB_PROVIDERS_MAX, "raise SB_PROVIDERS_MAX");

static const char *const kind_names[SB_KINDS] = {"cancel", "status", "token"};

size_t sb_prov_count(void)
{
    return SB_ARRAY_LEN(table);
}

const sb_prov *sb_prov_get(sb_prov_id p)
{
    return table[p];
}

int sb_prov_find(const char *s, size_t len, sb_prov_id *out)
{
    size_t i;

    for (i = 0; i < SB_ARRAY_LEN(table); i++) {
        if (strlen(table[i]->name) == len && memcmp(table[i]->name, s, len) == 0) {
            *out = (sb_prov_id)i;
            return 0;
        }
    }
    return -ENOENT;
}

const char *sb_prov_name(sb_prov_id p)
{
    return p < SB_ARRAY_LEN(table) ? table[p]->name : "*";
}

bool sb_prov_has_kind(sb_prov_id p, sb_kind k)
{
    size_t i;

    for (i = 0; i < table[p]->nendpoints; i++) {
        if (table[p]->endpoints[i].kind == k)
            return true;
    }
    return false;
}

void sb_prov_list(char out[SB_PROV_LIST_MAX], const char *last_sep)
{
    size_t i, n = SB_ARRAY_LEN(table), len = 0;

    out[0] = '\0';
    for (i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, SB_PROV_LIST_MAX - len, "%s%s",
                                i == 0 ? "" : (i + 1 == n ? last_sep : ", "), table[i]->name);
        if (len >= SB_PROV_LIST_MAX)
            return; /* truncated (a long last_sep); the message stays readable */
    }
}

/* Check one route's pattern: "/" + segments, at most SB_SEGS_MAX of them
 * and SB_ROUTE_ARGS_MAX {name} ones. */
static int check_pattern(const char *name, const char *pat, sb_why *why)
{
    size_t segs = 0, args = 0;
    const char *p = pat;

    if (*p != '/')
        return sb_why_set(why, "%s: pattern %s must start with /", name, pat);
    for (; *p != '\0'; p++) {
        if (*p == '/')
            segs++;
        else if (*p == '{')
            args++;
    }
    if (segs > SB_SEGS_MAX || args > SB_ROUTE_ARGS_MAX)
        return sb_why_set(why, "%s: pattern %s has more than %d segments or %d {args}", name, pat,
                          SB_SEGS_MAX, SB_ROUTE_ARGS_MAX);
    return 0;
}

int sb_provs_check(sb_why *why)
{
    size_t i, j, len;
    const sb_prov *pv;
    const sb_endpoint *rt;
    sb_prov_id other;

    for (i = 0; i < SB_ARRAY_LEN(table); i++) {
        pv = table[i];
        len = strlen(pv->name);
        if (len == 0 || len > SB_PROV_NAME_MAX ||
            strspn(pv->name, "abcdefghijklmnopqrstuvwxyz") != len)
            return sb_why_set(why, "provider name \"%s\" must be 1..%d letters a-z", pv->name,
                              SB_PROV_NAME_MAX);
        if (sb_prov_find(pv->name, len, &other) == 0 && other != i)
            return sb_why_set(why, "provider %s is listed twice", pv->name);
        if (pv->auth_header == NULL || pv->id_syntax == NULL || pv->canon_id == NULL ||
            pv->outage == NULL)
            return sb_why_set(why, "%s: auth_header, id_syntax, canon_id and outage are required",
                              pv->name);
        for (j = 0; j < SB_STATES; j++) {
            if (pv->state_names[j] == NULL)
                return sb_why_set(why, "%s: every state needs a name", pv->name);
        }
        for (j = 0; j < pv->nendpoints; j++) {
            rt = &pv->endpoints[j];
            if (rt->handle == NULL || (unsigned)rt->kind >= SB_KINDS)
                return sb_why_set(why, "%s: route %s needs a handler and a kind", pv->name,
                                  rt->pattern);
            if (check_pattern(pv->name, rt->pattern, why) != 0)
                return -EINVAL;
        }
    }
    return 0;
}

const char *sb_kind_name(sb_kind k)
{
    return (unsigned)k < SB_KINDS ? kind_names[k] : "*";
}

int sb_kind_parse(const char *s, sb_kind *out)
{
    size_t i;

    for (i = 0; i < SB_KINDS; i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (sb_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *sb_state_name(sb_prov_id p, sb_state st)
{
    if (p >= SB_ARRAY_LEN(table) || (unsigned)st >= SB_STATES)
        return "?";
    return table[p]->state_names[st];
}

int sb_state_parse(sb_prov_id p, const char *s, sb_state *out, sb_why *why)
{
    const sb_state_alias *a = table[p]->state_aliases;
    char extra[SB_WHY_MAX] = "";
    size_t len = 0;

    if (strcasecmp(s, "active") == 0) {
        *out = SB_ST_ACTIVE;
        return 0;
    }
    if (strcasecmp(s, "cancelled") == 0 || strcasecmp(s, "canceled") == 0) {
        *out = SB_ST_CANCELLED;
        return 0;
    }
    if (strcasecmp(s, "missing") == 0) {
        *out = SB_ST_MISSING;
        return 0;
    }
    for (; a != NULL && a->name != NULL; a++) {
        if (strcasecmp(s, a->name) == 0) {
            *out = a->state;
            return 0;
        }
        if (len < sizeof(extra))
            len += (size_t)snprintf(extra + len, sizeof(extra) - len, "%s%s",
                                    len == 0 ? " (or " : ", ", a->name);
    }
    return sb_why_set(why, "state must be active, cancelled or missing%s%s", extra,
                      len > 0 ? ")" : "");
}

int sb_target_key(sb_prov_id p, const char *id, char key[SB_KEY_MAX + 1])
{
    int n = snprintf(key, SB_KEY_MAX + 1, "%s:%s", table[p]->name, id);

    return n < 0 || n > SB_KEY_MAX ? -EINVAL : 0;
}

int sb_target_parse(const char *name, sb_prov_id *p, bool *wildcard, char key[SB_KEY_MAX + 1],
                    sb_why *why)
{
    const char *colon = strchr(name, ':');
    char id[SB_TARGET_ID_MAX + 1], list[SB_PROV_LIST_MAX];

    key[0] = '\0';
    *wildcard = false;
    if (strcmp(name, "*") == 0) {
        *p = SB_PROV_ALL;
        *wildcard = true;
        return 0;
    }
    if (colon == NULL)
        return sb_why_set(why, "target must be \"<provider>:<id>\", \"<provider>:*\" or \"*\"");
    if (sb_prov_find(name, (size_t)(colon - name), p) != 0) {
        sb_prov_list(list, ", ");
        return sb_why_set(why, "unknown provider in target (%s)", list);
    }
    if (strcmp(colon + 1, "*") == 0) {
        *wildcard = true;
        return 0;
    }
    if (table[*p]->canon_id(colon + 1, id, why) != 0)
        return -EINVAL;
    if (sb_target_key(*p, id, key) != 0)
        return sb_why_set(why, "target name too long");
    return 0;
}

/* Print text, each line after a newline indented by indent. */
static void print_lines(FILE *f, const char *text, const char *indent)
{
    const char *nl;

    fputs(indent, f);
    while ((nl = strchr(text, '\n')) != NULL) {
        fprintf(f, "%.*s\n%s", (int)(nl - text), text, indent);
        text = nl + 1;
    }
    fprintf(f, "%s\n", text);
}

/* "ACTIVE, CANCELED, missing": each distinct state name once. */
static void print_states(FILE *f, const sb_prov *pv)
{
    size_t i, j;
    const sb_state_alias *a;

    for (i = 0; i < SB_STATES; i++) {
        for (j = 0; j < i && strcmp(pv->state_names[j], pv->state_names[i]) != 0; j++)
            ;
        if (j == i)
            fprintf(f, "%s%s", i == 0 ? "" : ", ", pv->state_names[i]);
    }
    for (a = pv->state_aliases; a != NULL && a->name != NULL; a++)
        fprintf(f, "%s%s",
                a == pv->state_aliases ? "\n      (POST /_sandbox/state also takes " : ", ",
                a->name);
    fputs(pv->state_aliases != NULL && pv->state_aliases->name != NULL ? ")\n" : "\n", f);
}

void sb_provs_usage(FILE *f)
{
    const sb_prov *pv;
    const sb_endpoint *rt;
    size_t i, j;

    for (i = 0; i < SB_ARRAY_LEN(table); i++) {
        pv = table[i];
        fprintf(f, "%s - %s\n", pv->name, pv->title);
        fprintf(f, "  static token: %s: %s%s<token>  (default sandbox-%s-token)\n", pv->auth_header,
                pv->auth_scheme != NULL ? pv->auth_scheme : "", pv->auth_scheme != NULL ? " " : "",
                pv->name);
        if (pv->token_grants != NULL)
            fprintf(f, "  token endpoint grants: %s\n", pv->token_grants);
        fprintf(f, "  targets: %s:%s; states: ", pv->name, pv->id_syntax);
        print_states(f, pv);
        for (j = 0; j < pv->nendpoints; j++) {
            rt = &pv->endpoints[j];
            fprintf(f, "  %-4s %s  [%s]\n", http_method_str((enum http_method)rt->method),
                    rt->pattern, sb_kind_name(rt->kind));
            if (rt->help != NULL)
                print_lines(f, rt->help, "       ");
        }
    }
}
