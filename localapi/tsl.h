/* Umbrella header of the LocalAPI client core (prefix tsl_). */
#ifndef TSL_H
#define TSL_H

#include "tsl_result.h"
#include "tsl_client.h"
#include "tsl_addr.h"
#include "tsl_identity.h"
#include "tsl_whois.h"
#include "tsl_status.h"
#include "tsl_cert.h"
#include "tsl_header.h"

#define TSL_VERSION "0.1.0"

#endif
