/* mod_authnz_tailscale: the three outcomes of a lookup (see azt_outcome.h). */
#include "azt_outcome.h"

azt_outcome azt_outcome_of(tsl_code code)
{
    /* No default: a new tsl_code must be placed here (-Wswitch). */
    switch (code) {
    case TSL_OK:
        return AZT_IDENTIFIED;
    case TSL_ERR_NOT_FOUND:
        return AZT_NOT_A_PEER;
    case TSL_ERR_INVALID:
    case TSL_ERR_SOCKET_MISSING:
    case TSL_ERR_CONNECT:
    case TSL_ERR_TIMEOUT:
    case TSL_ERR_TRANSPORT:
    case TSL_ERR_TOO_LARGE:
    case TSL_ERR_DENIED:
    case TSL_ERR_RATE_LIMITED:
    case TSL_ERR_HTTP:
    case TSL_ERR_PARSE:
    case TSL_ERR_CERT:
        return AZT_UNAVAILABLE;
    }
    return AZT_UNAVAILABLE;     /* a value outside the enum */
}

int azt_outcome_unavailable(azt_outcome o)
{
    return o != AZT_IDENTIFIED && o != AZT_NOT_A_PEER;
}

const char *azt_outcome_name(azt_outcome o)
{
    switch (o) {
    case AZT_IDENTIFIED:
        return "identified";
    case AZT_NOT_A_PEER:
        return "not-a-peer";
    case AZT_UNAVAILABLE:
    case AZT_OUTCOME_UNSET:
        break;
    }
    return "unavailable";
}
