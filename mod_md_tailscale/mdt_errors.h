/* mod_md_tailscale: what a failure means for the operator.  Each kind of
 * failure has a stable log ID (TS02nnn, see docs/troubleshooting-certificates.md),
 * a short name used in status and events, and a hint saying what to do. */
#ifndef MDT_ERRORS_H
#define MDT_ERRORS_H

#include "tsl_result.h"

typedef struct mdt_error_info {
    const char *id;     /* "TS02044" */
    const char *kind;   /* "denied", "invalid-domain", ... */
    const char *hint;   /* one sentence */
} mdt_error_info;

/* Failures found by the driver itself rather than reported by tsl_. */
#define MDT_KIND_NOT_CERT_DOMAIN  "not-a-cert-domain"
#define MDT_KIND_NOT_RUNNING      "not-running"
#define MDT_KIND_NOT_RENEWED      "not-renewed"
#define MDT_KIND_WRONG_NAMES      "wrong-names"
#define MDT_KIND_STORE            "store"

/* Classify a failed LocalAPI result (tailscaled's own text decides where
 * the status code alone does not). */
void mdt_error_classify(const tsl_result *res, mdt_error_info *out);

/* The info for one of the driver's own kinds above. */
void mdt_error_for_kind(const char *kind, mdt_error_info *out);

#endif
