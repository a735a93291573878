"""The tailnet: what the netmap says.  Loaded from a JSON description
(README.md documents it) and compiled into the JSON shapes tailscaled emits."""

import copy
import hashlib
import ipaddress
import re

from .gocompat import addr_key, go_parse_addr, unmap_addr


BACKEND_STATES = ["NoState", "InUseOtherUser", "NeedsLogin", "NeedsMachineAuth",
                  "Stopped", "Starting", "Running"]


class TailnetError(ValueError):
    pass


def _derived_hex(*parts):
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()


def _derived_id(*parts):
    # Realistic-looking positive int64 (control's IDs are 13-16 digits).
    return int(_derived_hex("id", *parts)[:13], 16) % (9 * 10 ** 15) + 10 ** 15


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _derived_stable_id(name):
    n = int(_derived_hex("stable", name), 16)
    s = ""
    for _ in range(9):
        n, r = divmod(n, 62)
        s += _B62[r]
    return "n" + s + "CNTRL"


def sanitize_hostname(h):
    # dnsname.SanitizeHostname, reduced to what matters for ComputedName.
    h = h.strip().lower()
    if h.endswith(".local"):
        h = h[:-6]
    h = h.split(".")[0]
    h = re.sub(r"[^a-z0-9-]", "-", h).strip("-")
    return h[:63]


def sorted_map(m):
    # Go marshals map keys in sorted order.
    if m is None:
        return None
    return {k: m[k] for k in sorted(m)}


TOP_KEYS = {"comment", "version", "capability_version", "backend_state", "netmap", "auth_url",
            "tailnet", "https", "wildcard_certs", "cert_domains", "certs", "permissions",
            "tagged_devices_user_id", "users", "self", "nodes", "health", "prefs"}
NODE_KEYS = {"comment", "name", "fqdn", "id", "stable_id", "user", "tags", "shared_by", "addresses",
             "allowed_ips", "primary_routes", "hostname", "os", "os_version", "distro", "ipn_version",
             "online", "created", "last_seen", "key_expiry", "cap_map", "cap_map_by_dst",
             "capabilities", "node_cap_map", "endpoints", "home_derp", "cap", "key", "machine",
             "disco", "machine_authorized", "expired", "hostinfo", "extra"}
SEE_GROUPS_ATTR = "tailscale.com/see-groups"
USER_KEYS = {"comment", "id", "login", "display_name", "profile_pic_url", "groups"}


def _entries(coll, key, what):
    """users/nodes may be an object keyed by login/name (the documented form)
    or a list of objects carrying that key."""
    if coll is None:
        return []
    if isinstance(coll, dict):
        out = []
        for k, v in coll.items():
            if not isinstance(v, dict):
                raise TailnetError("%s[%r] must be an object" % (what, k))
            if key in v and v[key] != k:
                raise TailnetError("%s[%r] has %s %r" % (what, k, key, v[key]))
            out.append(dict(v, **{key: k}))
        return out
    if isinstance(coll, list) and all(isinstance(v, dict) for v in coll):
        return coll
    raise TailnetError("%s must be an object keyed by %s (or a list of objects)" % (what, key))


class Tailnet:
    """A validated, compiled tailnet description.  Immutable once built; the
    emulator swaps whole instances so a request always sees one consistent view."""

    def __init__(self, raw):
        if not isinstance(raw, dict):
            raise TailnetError("tailnet description must be a JSON object")
        self.raw = copy.deepcopy(raw)
        r = self.raw
        unknown = set(r) - TOP_KEYS
        if unknown:
            raise TailnetError("unknown top-level keys: %s" % ", ".join(sorted(unknown)))
        self.version = str(r.get("version", "1.102.3-t53a0d659a-g4567ef89"))
        self.short_version = self.version.split("-")[0]
        self.capver = int(r.get("capability_version", 145))
        self.backend_state = r.get("backend_state", "Running")
        if self.backend_state not in BACKEND_STATES:
            raise TailnetError("backend_state must be one of %s" % BACKEND_STATES)
        nm = r.get("netmap")
        self.has_netmap = (self.backend_state not in ("NoState", "NeedsLogin")) if nm is None else bool(nm)
        self.auth_url = r.get("auth_url", "")
        tn = r.get("tailnet") or {}
        self.tailnet_name = tn.get("name", "example.com")
        self.suffix = tn.get("magic_dns_suffix", "tail1234.ts.net").strip(".")
        self.magic_dns = bool(tn.get("magic_dns_enabled", True))
        self.https = bool(r.get("https", True))
        self.wildcard = bool(r.get("wildcard_certs", False))
        self.health = r.get("health") or []
        certs = r.get("certs") or {}
        self.cert_lifetime = float(certs.get("lifetime", 7776000))
        self.issue_delay = float(certs.get("issue_delay", 0.3))
        self.renew_fraction = float(certs.get("renew_fraction", 2.0 / 3.0))
        if self.cert_lifetime < 2:
            raise TailnetError("certs.lifetime must be at least 2 seconds")
        perms = r.get("permissions") or {}
        self.write_uids = set(int(u) for u in perms.get("write_uids", [0]))
        self.cert_uids = set(int(u) for u in perms.get("cert_uids", []))
        self.operator = perms.get("operator_uid")
        self.permit_cert_uid = perms.get("permit_cert_uid")
        self.tagged_uid = int(r.get("tagged_devices_user_id", 3817266590173952))

        self.users = {}
        self.users_by_login = {}
        self.user_groups = {}
        for u in _entries(r.get("users"), "login", "users"):
            unknown = set(u) - USER_KEYS
            if unknown:
                raise TailnetError("user %r: unknown keys %s" % (u.get("login"), sorted(unknown)))
            if "login" not in u:
                raise TailnetError("every user needs a login")
            uid = int(u.get("id") or _derived_id("user", u["login"]))
            prof = {"ID": uid, "LoginName": u["login"],
                    "DisplayName": u.get("display_name") or u["login"].split("@")[0]}
            if u.get("profile_pic_url"):
                prof["ProfilePicURL"] = u["profile_pic_url"]
            groups = u.get("groups") or []
            if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
                raise TailnetError("user %s: groups must be a list of strings" % u["login"])
            if uid in self.users or u["login"] in self.users_by_login:
                raise TailnetError("duplicate user %s" % u["login"])
            self.users[uid] = prof
            self.users_by_login[u["login"]] = uid
            self.user_groups[uid] = groups

        self.nodes = []
        self.by_name = {}
        self.by_addr = {}
        self.by_key = {}
        self.by_id = {}
        for n in _entries(r.get("nodes"), "name", "nodes"):
            node = self._compile_node(n)
            self.nodes.append(node)
        self.self_name = r.get("self")
        if self.self_name not in self.by_name:
            raise TailnetError("'self' must name one of the nodes")
        self.self_node = self.by_name[self.self_name]
        self.self_node["is_self"] = True

        cd = r.get("cert_domains")
        if not self.https:
            self.cert_domains = None
        elif cd is None:
            self.cert_domains = [self.self_node["fqdn"]]
        else:
            self.cert_domains = [str(d).rstrip(".") for d in cd] or None
        if self.wildcard:
            ncm = self.self_node.setdefault("node_cap_map", {}) or {}
            ncm.setdefault("dns-subdomain-resolve", None)
            self.self_node["node_cap_map"] = ncm
        self._fill_groups()
        self.prefs_overrides = r.get("prefs") or {}
        for node in self.nodes:
            node["json"] = self._node_json(node)

    def _fill_groups(self):
        """UserProfile.Groups as control sends them (tailscale 1.98+): only to a
        self node with the node attribute tailscale.com/see-groups, and only the
        groups its values list ([{"groups": ["group:eng"]}]); sorted; omitted
        when empty."""
        ncm = self.self_node.get("node_cap_map") or {}
        allowed = set()
        for v in ncm.get(SEE_GROUPS_ATTR) or []:
            if isinstance(v, dict):
                allowed.update(g for g in v.get("groups") or [] if isinstance(g, str))
        for uid, prof in self.users.items():
            seen = sorted(set(self.user_groups.get(uid, [])) & allowed)
            if seen:
                prof["Groups"] = seen

    def _user_ref(self, ref, what, name):
        if ref is None:
            return None
        if isinstance(ref, int):
            if ref not in self.users:
                raise TailnetError("node %s: %s %r is not a user" % (name, what, ref))
            return ref
        if ref not in self.users_by_login:
            raise TailnetError("node %s: %s %r is not a user" % (name, what, ref))
        return self.users_by_login[ref]

    def _compile_node(self, n):
        if "name" not in n:
            raise TailnetError("every node needs a name")
        name = n["name"]
        unknown = set(n) - NODE_KEYS
        if unknown:
            raise TailnetError("node %s: unknown keys %s" % (name, sorted(unknown)))
        if name in self.by_name:
            raise TailnetError("duplicate node name %s" % name)
        fqdn = (n.get("fqdn") or "%s.%s" % (name, self.suffix)).rstrip(".")
        tags = list(n.get("tags") or [])
        for t in tags:
            if not str(t).startswith("tag:"):
                raise TailnetError("node %s: tag %r must start with 'tag:'" % (name, t))
        if tags:
            user_id = self.tagged_uid
            if user_id not in self.users:
                self.users[user_id] = {"ID": user_id, "LoginName": "tagged-devices",
                                       "DisplayName": "Tagged Devices"}
        else:
            if n.get("user") is None:
                raise TailnetError("node %s needs a user or tags" % name)
            user_id = self._user_ref(n.get("user"), "user", name)
        sharer = self._user_ref(n.get("shared_by"), "shared_by", name)
        addrs = []
        for a in n.get("addresses") or []:
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                raise TailnetError("node %s: bad address %r" % (name, a))
            if addr_key(ip) in self.by_addr:
                raise TailnetError("node %s: address %s already used" % (name, a))
            addrs.append(ip)
        if not addrs:
            raise TailnetError("node %s needs at least one address" % name)
        node = {
            "name": name, "fqdn": fqdn, "tags": tags, "user_id": user_id, "sharer": sharer,
            "addresses": addrs,
            "id": int(n.get("id") or _derived_id("node", name)),
            "stable_id": n.get("stable_id") or _derived_stable_id(name),
            "key": n.get("key") or "nodekey:" + _derived_hex("nodekey", name),
            "machine": n.get("machine") or "mkey:" + _derived_hex("mkey", name),
            "disco": n.get("disco") or "discokey:" + _derived_hex("disco", name),
            "hostname": n.get("hostname") or name,
            "os": n.get("os", "linux"),
            "os_version": n.get("os_version"),
            "distro": n.get("distro"),
            "ipn_version": n.get("ipn_version"),
            "online": n.get("online", True),
            "created": n.get("created") or "2025-03-04T05:06:07.123456789Z",
            "last_seen": n.get("last_seen"),
            "key_expiry": n.get("key_expiry", None if tags else "2026-12-01T10:00:00Z"),
            "cap_map": n.get("cap_map"),
            "cap_map_by_dst": n.get("cap_map_by_dst") or {},
            "capabilities": n.get("capabilities") or [],
            "node_cap_map": n.get("node_cap_map"),
            "endpoints": n.get("endpoints"),
            "home_derp": n.get("home_derp", 2),
            "cap": n.get("cap", self.capver),
            "allowed_ips": n.get("allowed_ips") or [],
            "primary_routes": n.get("primary_routes") or [],
            "machine_authorized": n.get("machine_authorized", True),
            "expired": bool(n.get("expired", False)),
            "hostinfo": n.get("hostinfo") or {},
            "extra": n.get("extra") or {},
        }
        if not re.fullmatch(r"nodekey:[0-9a-fA-F]{64}", node["key"]):
            raise TailnetError("node %s: key must be nodekey:<64 hex>" % name)
        if node["cap_map"] is not None and not isinstance(node["cap_map"], dict):
            raise TailnetError("node %s: cap_map must be an object or null" % name)
        self.by_name[name] = node
        for a in addrs:
            self.by_addr[addr_key(a)] = node
        self.by_key[node["key"].lower()] = node
        self.by_id[node["id"]] = node
        return node

    # --- JSON shapes -----------------------------------------------------

    @staticmethod
    def _cidr(a):
        return "%s/%d" % (a, 32 if a.version == 4 else 128)

    def computed_names(self, node):
        # tailcfg.Node.InitDisplayNames
        fq = node["fqdn"]
        name = fq[:-len(self.suffix) - 1] if fq.endswith("." + self.suffix) else fq
        host = sanitize_hostname(node["hostname"])
        if name.lower() == host.lower():
            host = ""
        if name == "":
            name, host = (host, "") if host else (node["key"], "")
        return name, ("%s (%s)" % (name, host) if host else name)

    def _node_json(self, node):
        """tailcfg.Node in struct order with v1.92+ omitzero rules."""
        j = {"ID": node["id"], "StableID": node["stable_id"], "Name": node["fqdn"] + ".",
             "User": node["user_id"]}
        if node["sharer"]:
            j["Sharer"] = node["sharer"]
        j["Key"] = node["key"]
        if node["key_expiry"]:
            j["KeyExpiry"] = node["key_expiry"]
        j["Machine"] = node["machine"]
        j["DiscoKey"] = node["disco"]
        j["Addresses"] = [self._cidr(a) for a in node["addresses"]]
        j["AllowedIPs"] = [self._cidr(a) for a in node["addresses"]] + list(node["allowed_ips"])
        if node["endpoints"]:
            j["Endpoints"] = list(node["endpoints"])
        if node["home_derp"]:
            j["HomeDERP"] = node["home_derp"]
        hi = {"IPNVersion": node["ipn_version"] or self.version, "OS": node["os"]}
        if node["os_version"]:
            hi["OSVersion"] = node["os_version"]
        if node["distro"]:
            hi["Distro"] = node["distro"]
        hi["Hostname"] = node["hostname"]
        hi.update(node["hostinfo"])
        j["Hostinfo"] = hi
        j["Created"] = node["created"]
        if node["cap"]:
            j["Cap"] = node["cap"]
        if node["tags"]:
            j["Tags"] = list(node["tags"])
        if node["primary_routes"]:
            j["PrimaryRoutes"] = list(node["primary_routes"])
        if node["last_seen"]:
            j["LastSeen"] = node["last_seen"]
        if node["online"] is not None:
            j["Online"] = bool(node["online"])
        if node["machine_authorized"]:
            j["MachineAuthorized"] = True
        if node["capabilities"]:
            j["Capabilities"] = list(node["capabilities"])
        if node["node_cap_map"]:
            j["CapMap"] = sorted_map(node["node_cap_map"])
        cn, cnh = self.computed_names(node)
        j["ComputedName"] = cn
        j["ComputedNameWithHost"] = cnh
        if node["expired"]:
            j["Expired"] = True
        j.update(node["extra"])
        return j

    def service_ips(self):
        """Self.CapMap["service-host"]: {"svc:web": [VIP, ...]} (tailcfg.ServiceIPMappings)."""
        out = {}
        for v in (self.self_node.get("node_cap_map") or {}).get("service-host") or []:
            if isinstance(v, dict):
                for name, ips in v.items():
                    out.setdefault(name, []).extend(ipaddress.ip_address(a) for a in ips)
        return out

    def peer_cap_map(self, node, svc_name="", dst_ip=""):
        """The whois CapMap (null when the peer has no capabilities), as
        tailscaled 1.100+ scopes it: svc_name (which wins over dst_ip) is
        resolved to the service's VIP of the peer's address family; a
        destination that is one of this node's own addresses gets the host's
        grants, a hosted service's VIP the grants that target that service,
        anything else none."""
        by_dst = node["cap_map_by_dst"]
        if svc_name:
            fam = node["addresses"][0].version
            vips = [a for a in self.service_ips().get(svc_name, []) if a.version == fam]
            if not vips:
                return None
            cm = by_dst.get(svc_name, by_dst.get(str(vips[0])))
        elif dst_ip:
            d = unmap_addr(go_parse_addr(dst_ip))
            if any(addr_key(d) == addr_key(a) for a in self.self_node["addresses"]):
                cm = node["cap_map"]
            else:
                names = [n for n, ips in self.service_ips().items()
                         if any(addr_key(d) == addr_key(a) for a in ips)]
                cm = by_dst.get(str(d))
                if cm is None and names:
                    cm = by_dst.get(names[0])
        else:
            cm = node["cap_map"]
        return sorted_map(cm) if cm else None

    def peer_status(self, node):
        """ipnstate.PeerStatus for status JSON."""
        ips = [str(a) for a in node["addresses"]]
        j = {"ID": node["stable_id"], "PublicKey": node["key"], "HostName": node["hostname"],
             "DNSName": node["fqdn"] + ".", "OS": node["os"], "UserID": node["user_id"]}
        if node["sharer"]:
            j["AltSharerUserID"] = node["sharer"]
        j["TailscaleIPs"] = ips
        j["AllowedIPs"] = [self._cidr(a) for a in node["addresses"]] + list(node["allowed_ips"])
        if node["tags"]:
            j["Tags"] = list(node["tags"])
        if node["primary_routes"]:
            j["PrimaryRoutes"] = list(node["primary_routes"])
        j.update({
            "Addrs": list(node["endpoints"]) if node["endpoints"] else None,
            "CurAddr": "", "Relay": "fra", "PeerRelay": "",
            "RxBytes": 0, "TxBytes": 0,
            "Created": node["created"],
            "LastWrite": "0001-01-01T00:00:00Z",
            "LastSeen": node["last_seen"] or "0001-01-01T00:00:00Z",
            "LastHandshake": "0001-01-01T00:00:00Z",
            "Online": bool(node["online"]), "ExitNode": False, "ExitNodeOption": False,
            "Active": False,
            "PeerAPIURL": ["http://%s:%d" % (node["addresses"][0], 40000 + node["id"] % 20000)],
            "TaildropTarget": 0, "NoFileSharingReason": "",
        })
        if node["capabilities"]:
            j["Capabilities"] = list(node["capabilities"])
        if node["node_cap_map"]:
            j["CapMap"] = sorted_map(node["node_cap_map"])
        j.update({"InNetworkMap": True, "InMagicSock": not node.get("is_self"),
                  "InEngine": False})
        if node["key_expiry"]:
            j["KeyExpiry"] = node["key_expiry"]
        # The int NodeID sits right after ID in the struct.
        out = {"ID": j.pop("ID"), "NodeID": node["id"]}
        out.update(j)
        return out

    def status_json(self, with_peers):
        st = {"Version": self.version, "TUN": True, "BackendState": self.backend_state}
        nm = self.has_netmap
        if nm:
            st["HaveNodeKey"] = True
        st["AuthURL"] = self.auth_url
        st["TailscaleIPs"] = [str(a) for a in self.self_node["addresses"]] if nm else None
        if nm:
            st["Self"] = self.peer_status(self.self_node)
        else:
            st["Self"] = {"ID": "", "NodeID": 0, "PublicKey": self.self_node["key"],
                          "HostName": self.self_node["hostname"], "DNSName": "", "OS": "linux",
                          "UserID": 0, "TailscaleIPs": None, "Addrs": None, "CurAddr": "",
                          "Relay": "", "PeerRelay": "", "RxBytes": 0, "TxBytes": 0,
                          "Created": "0001-01-01T00:00:00Z", "LastWrite": "0001-01-01T00:00:00Z",
                          "LastSeen": "0001-01-01T00:00:00Z",
                          "LastHandshake": "0001-01-01T00:00:00Z", "Online": False,
                          "ExitNode": False, "ExitNodeOption": False, "Active": False,
                          "PeerAPIURL": None, "TaildropTarget": 0, "NoFileSharingReason": "",
                          "InNetworkMap": False, "InMagicSock": False, "InEngine": False}
        st["Health"] = list(self.health) if self.health else None
        st["MagicDNSSuffix"] = self.suffix if nm else ""
        st["CurrentTailnet"] = ({"Name": self.tailnet_name, "MagicDNSSuffix": self.suffix,
                                 "MagicDNSEnabled": self.magic_dns} if nm else None)
        st["CertDomains"] = list(self.cert_domains) if (nm and self.cert_domains) else None
        st["ExtraRecords"] = None
        if nm and with_peers:
            peers = {n["key"]: self.peer_status(n) for n in self.nodes if not n.get("is_self")}
            st["Peer"] = sorted_map(peers)
            users = {str(uid): p for uid, p in self.users.items()}
            st["User"] = sorted_map(users)
        else:
            st["Peer"] = None
            if nm:  # since v1.100 the self user stays in User with peers=false
                su = self.self_node["user_id"]
                st["User"] = {str(su): self.users[su]} if su in self.users else None
            else:
                st["User"] = None
        st["ClientVersion"] = None
        return st

    def netmap_json(self):
        """A reduced netmap.NetworkMap for watch-ipn-bus."""
        if not self.has_netmap:
            return None
        return {
            "SelfNode": self.self_node["json"],
            "NodeKey": self.self_node["key"],
            "Name": self.self_node["fqdn"] + ".",
            "Addresses": [self._cidr(a) for a in self.self_node["addresses"]],
            "MachineKey": self.self_node["machine"],
            "Peers": [n["json"] for n in sorted(self.nodes, key=lambda n: n["id"])
                      if not n.get("is_self")],
            "DNS": self.dns_config_json(),
            "Domain": self.tailnet_name,
            "UserProfiles": sorted_map({str(k): v for k, v in self.users.items()}),
        }

    def dns_config_json(self):
        j = {"Resolvers": [{"Addr": "100.100.100.100"}], "Domains": [self.suffix],
             "Proxied": self.magic_dns}
        if self.cert_domains:
            j["CertDomains"] = list(self.cert_domains)
        return j


def deep_merge(base, patch):
    """JSON merge: objects merge recursively, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
