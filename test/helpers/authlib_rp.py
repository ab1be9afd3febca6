#!/usr/bin/python3
"""A relying party of the SSO center written with Authlib (Debian's python3-authlib), as a clinical
system's Python developer would write it. One step per run: a JSON request on stdin, a JSON answer
on stdout. The browser and the card (SoftHSM) are driven by the test in Node.

  start:   {"step": "start", issuer, client_id, client_secret, redirect_uri, scope, prompt?}
           -> {url, state, verifier, nonce}          (authorization code + PKCE S256)
  finish:  {"step": "finish", ..., callback, state, verifier, nonce}
           -> {claims, userinfo, refresh_token, refreshed_claims, userinfo_after_refresh, end_session_url}
           (code exchange with HTTP Basic, ID token checked by Authlib's CodeIDToken against the
           JWKS: signature, iss, aud, exp, nonce, at_hash; userinfo; refresh; userinfo again)
  refresh: {"step": "refresh", ..., refresh_token} -> {ok: true, refresh_token} or {ok: false, error}
"""
import json
import sys
from urllib.parse import urlencode

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def verify_id_token(id_token, meta, req, nonce=None, access_token=None):
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        id_token, keys, claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": meta["issuer"]}},
        claims_params={"nonce": nonce, "client_id": req["client_id"], "access_token": access_token},
    )
    claims.validate(leeway=30)
    return dict(claims)


def main():
    req = json.load(sys.stdin)
    meta = requests.get(req["issuer"] + "/.well-known/openid-configuration", timeout=10).json()
    if meta["issuer"] != req["issuer"]:
        raise SystemExit("issuer mismatch")
    client = OAuth2Session(
        req["client_id"], req["client_secret"], scope=req.get("scope", "openid hcrole offline_access"),
        redirect_uri=req["redirect_uri"], code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",
    )
    step = req["step"]
    if step == "start":
        verifier, nonce = generate_token(48), generate_token(20)
        prompt = req.get("prompt") or ("consent" if "offline_access" in client.scope else None)
        extra = {"prompt": prompt} if prompt else {}
        url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra)
        out = {"url": url, "state": state, "verifier": verifier, "nonce": nonce}
    elif step == "finish":
        token = client.fetch_token(meta["token_endpoint"], authorization_response=req["callback"], state=req["state"], code_verifier=req["verifier"])
        claims = verify_id_token(token["id_token"], meta, req, req["nonce"], token["access_token"])
        userinfo = client.get(meta["userinfo_endpoint"], timeout=10).json()
        refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
        refreshed_claims = verify_id_token(refreshed["id_token"], meta, req, None, refreshed["access_token"])
        after = client.get(meta["userinfo_endpoint"], timeout=10).json()
        end = meta["end_session_endpoint"] + "?" + urlencode({"id_token_hint": refreshed["id_token"], "client_id": req["client_id"]})
        out = {
            "claims": claims, "userinfo": userinfo, "first_refresh_token": token["refresh_token"], "refresh_token": refreshed["refresh_token"],
            "refreshed_claims": refreshed_claims, "userinfo_after_refresh": after, "end_session_url": end,
        }
    elif step == "refresh":
        try:
            t = client.refresh_token(meta["token_endpoint"], refresh_token=req["refresh_token"])
            out = {"ok": True, "refresh_token": t.get("refresh_token")}
        except OAuthError as e:
            out = {"ok": False, "error": e.error}
    else:
        raise SystemExit(f"unknown step {step}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
