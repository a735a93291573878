/* mod_md_tailscale: failure classification, log IDs and hints. */
#include <string.h>
#include "mdt_errors.h"

static void set(mdt_error_info *o, const char *id, const char *kind, const char *hint)
{
    o->id = id;
    o->kind = kind;
    o->hint = hint;
}

void mdt_error_classify(const tsl_result *res, mdt_error_info *o)
{
    const char *t = res && res->text ? res->text : "";

    switch (res ? res->code : TSL_ERR_INVALID) {
    case TSL_ERR_SOCKET_MISSING:
        set(o, "TS02040", "socket-missing",
            "is tailscaled running (systemctl status tailscaled)? check the socket "
            "path in MDCertificateAuthority");
        return;
    case TSL_ERR_CONNECT:
        set(o, "TS02041", "connect",
            "tailscaled does not accept connections on the socket: check that it "
            "is running and that the socket is tailscaled's");
        return;
    case TSL_ERR_TIMEOUT:
        set(o, "TS02042", "timeout",
            "tailscaled did not answer in time; a first certificate can take a "
            "minute (see MDTailscaleRequestTimeout), otherwise check tailscale status");
        return;
    case TSL_ERR_TRANSPORT:
    case TSL_ERR_TOO_LARGE:
    case TSL_ERR_PARSE:
        set(o, "TS02043", "bad-answer",
            "the answer on the socket was not what tailscaled sends: check that "
            "the socket belongs to tailscaled and that tailscaled is healthy");
        return;
    case TSL_ERR_DENIED:
        set(o, "TS02044", "denied",
            "tailscaled refused the certificate to the asking process; "
            "mod_md_tailscale asks from httpd's parent process, so run httpd's "
            "parent as root, or make its user the operator (tailscale set "
            "--operator=USER), or set TS_PERMIT_CERT_UID=USER for tailscaled");
        return;
    case TSL_ERR_RATE_LIMITED:
        set(o, "TS02047", "rate-limited",
            "the certificate authority limits issuance for now; mod_md_tailscale "
            "waits at least as long as Retry-After says and tries again");
        return;
    case TSL_ERR_CERT:
        set(o, "TS02049", "bad-certificate",
            "tailscaled returned a certificate that cannot be used (key mismatch, "
            "broken chain, names or dates); the current certificate stays in use");
        return;
    case TSL_ERR_NOT_FOUND:
        set(o, "TS02084", "no-cert-support",
            "this tailscaled has no certificate support (404): use a tailscaled "
            "build with ACME support (not iOS/Android/js builds)");
        return;
    default:
        break;
    }
    if (strstr(t, "does not support getting TLS certs")) {
        set(o, "TS02046", "https-disabled",
            "enable HTTPS certificates for the tailnet in the Tailscale admin "
            "console (DNS page: MagicDNS and HTTPS Certificates)");
    }
    else if (strstr(t, "wildcard certificates are not enabled")) {
        set(o, "TS02053", "wildcard-disabled",
            "wildcard certificates need the node attribute that enables subdomain "
            "resolution; without it use one MDomain per plain node name");
    }
    else if (!strncmp(t, "invalid domain", 14)) {
        set(o, "TS02045", "invalid-domain",
            "MDomain names must be among tailscaled's CertDomains (tailscale status "
            "--json shows them): this node's name (node.tailnet.ts.net) or the name of a "
            "Tailscale Service this node is approved to host (svc.tailnet.ts.net)");
    }
    else if (strstr(t, "no netmap")) {
        set(o, "TS02052", "no-netmap",
            "tailscaled is not connected to the tailnet yet: check tailscale status "
            "and log in (tailscale up)");
    }
    else {
        set(o, "TS02048", "tailscaled-error",
            "tailscaled could not provide the certificate; its message above says "
            "why (tailscaled's own log has details)");
    }
}

void mdt_error_for_kind(const char *kind, mdt_error_info *o)
{
    if (!strcmp(kind, MDT_KIND_NOT_CERT_DOMAIN)) {
        set(o, "TS02051", kind,
            "MDomain names must be among tailscaled's CertDomains; use one of the "
            "names listed, or enable HTTPS for the tailnet if the list is empty");
    }
    else if (!strcmp(kind, MDT_KIND_NOT_RUNNING)) {
        set(o, "TS02050", kind,
            "tailscaled is not logged in or not running (tailscale status; "
            "tailscale up)");
    }
    else if (!strcmp(kind, MDT_KIND_NOT_RENEWED)) {
        set(o, "TS02054", kind,
            "tailscaled returned the same certificate although it is inside the "
            "renew window; it will be asked again (check tailscaled's log)");
    }
    else if (!strcmp(kind, MDT_KIND_WRONG_NAMES)) {
        set(o, "TS02055", kind,
            "the certificate does not cover every name of the MDomain; for "
            "'x *.x' tailscaled must issue a wildcard certificate that covers both");
    }
    else {
        set(o, "TS02091", MDT_KIND_STORE,
            "the certificate store could not be written: check space and "
            "permissions of MDTailscaleStoreDir");
    }
}
