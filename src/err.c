#include "cancelq/err.h"

#include <stdarg.h>
#include <stdio.h>

int cq_err_set(cq_err *err, int rc, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return rc;
    snprintf(err->code, sizeof(err->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

void cq_err_clear(cq_err *err)
{
    if (err == NULL)
        return;
    err->code[0] = '\0';
    err->msg[0] = '\0';
}
