"""AuthType tailscale's 401: the challenge RFC 9110 requires on every 401
(scheme Tailscale, with a realm) and a page that tells the person at the
browser why and what to do, instead of Apache's "wrong credentials (e.g., bad
password)" page. An administrator's ErrorDocument 401 still wins."""

import re

import pytest

from .site import SECRET

BROWSER = ["User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
           "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
           "Accept-Language: en-US,en;q=0.5"]

EXTRA = """
<Location /named>
  AuthType tailscale
  AuthName 'Team "wiki"'
  Require valid-user
</Location>
<Location /alice-only>
  AuthType tailscale
  Require tailscale-user alice@example.com
</Location>
<Location /own-page>
  AuthType tailscale
  Require valid-user
  ErrorDocument 401 "ask the helpdesk"
</Location>
AliasMatch "^/(named|alice-only|own-page)" "@DOCROOT@/secret.txt"
"""


@pytest.fixture
def site(make_site):
    return make_site(EXTRA)


def challenge(headers_text):
    m = re.search(r"^WWW-Authenticate: (.*?)\r?$", headers_text, re.M | re.I)
    return m.group(1) if m else None


def test_not_a_peer_gets_a_challenge_and_a_page_saying_to_join_the_tailnet(site):
    status, body, headers = site.get("stranger", "/p/auth")
    assert status == 401
    # without AuthName the realm is the server's name
    assert challenge(headers) == 'Tailscale realm="127.0.0.1"', headers
    assert "not come from a device of this tailnet" in body, body
    assert "tailscale up" in body
    assert "bad password" not in body and SECRET not in body


def test_tagged_node_is_told_it_is_a_machine_not_a_user(site):
    status, body, headers = site.get("ci-runner", "/p/auth")
    assert status == 401
    assert (challenge(headers) or "").startswith("Tailscale realm="), headers
    assert "tagged node" in body and "admit this device by its tag" in body, body
    assert "bad password" not in body


def test_authname_is_the_realm_as_a_quoted_string(site):
    status, _, headers = site.get("stranger", "/named")
    assert status == 401
    assert challenge(headers) == 'Tailscale realm="Team \\"wiki\\""', headers


def test_identified_user_a_rule_denies_gets_403_without_a_challenge(site):
    # authenticated, not authorized: nothing to answer a challenge with
    status, _, headers = site.get("phone", "/alice-only")
    assert status == 403 and challenge(headers) is None, headers
    assert site.get("laptop", "/alice-only")[0] == 200


def test_browser_gets_the_page_as_html(site):
    status, headers, body = site.raw("stranger", "/p/auth", headers=BROWSER)
    assert status == 401
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["www-authenticate"].startswith("Tailscale realm=")
    assert headers["content-type"].startswith("text/html")
    assert "<h1>Tailnet identity required</h1>" in body, body
    assert "bad password" not in body and SECRET not in body


def test_errordocument_401_of_the_admin_wins_the_challenge_stays(site):
    status, body, headers = site.get("stranger", "/own-page")
    assert status == 401
    assert (challenge(headers) or "").startswith("Tailscale realm="), headers
    assert "ask the helpdesk" in body and "Tailnet identity required" not in body
