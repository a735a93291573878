/* mod_authnz_tailscale: the three outcomes of a lookup.
 *
 * Identified, not a tailnet peer, or unavailable: nothing else.  "Not a
 * peer" comes only from tailscaled's own no-match answer (azt_outcome_of)
 * or from an address that can never be a peer (decided in azt_lookup.c);
 * every other code and path is "unavailable", which never grants and never
 * lets a negated rule grant.  No httpd headers: the fuzz targets use it.
 */
#ifndef AZT_OUTCOME_H
#define AZT_OUTCOME_H

#include "tsl_result.h"

typedef enum azt_outcome {
    AZT_OUTCOME_UNSET = 0,      /* a bug wherever it is read: treated as unavailable */
    AZT_IDENTIFIED,
    AZT_NOT_A_PEER,
    AZT_UNAVAILABLE
} azt_outcome;

/* What a whois result code means: the one mapper from tsl_code. */
azt_outcome azt_outcome_of(tsl_code code);

/* True unless the outcome is a definite answer (identified or not a peer). */
int azt_outcome_unavailable(azt_outcome o);

/* Stable name for logs: "identified", "not-a-peer", "unavailable". */
const char *azt_outcome_name(azt_outcome o);

#endif
