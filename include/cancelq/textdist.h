/*
 * textdist.h - how far apart two short names are, for "did you mean"
 * (config keys in config_load.c, filter values and names in cancelqctl).
 * Pure.
 */
#ifndef CANCELQ_TEXTDIST_H
#define CANCELQ_TEXTDIST_H

#include <stddef.h>

/* Names longer than this are not compared. */
#define CQ_EDIT_NAME_MAX 64

/* Levenshtein distance of a and b; SIZE_MAX when either is longer than
 * CQ_EDIT_NAME_MAX bytes. */
size_t cq_edit_distance(const char *a, const char *b);

#endif
