//! A ready authenticator for JSON Web Tokens sent as bearer tokens.

use std::time::Duration;

use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{claim_types, AuthError, Authenticator, Identity};
use crate::connection::RequestContext;

/// Authenticates requests by the JSON Web Token they carry as a bearer token: the
/// `Authorization: Bearer …` header or, as browsers must send it on WebSockets and
/// Server-Sent Events, the `access_token` query parameter.
///
/// The token's signature and expiry are always checked (a token without `exp` is refused),
/// and so is its `nbf` when it has one (a token used before it is refused); the issuer and
/// audience when you name them. Every claim of the token becomes a claim of
/// the [`Identity`] (an array gives one claim per item; numbers and booleans their JSON
/// text). The user id — what `clients.user(..)` targets — is the NameIdentifier claim
/// (`nameid`, or its long name [`claim_types::NAME_IDENTIFIER`]), else `sub`; choose
/// another claim with [`user_id_claim`](Self::user_id_claim).
///
/// A request without a token, or with one that fails a check, is refused (401), unless
/// [`allow_anonymous`](Self::allow_anonymous) lets requests without a token in.
///
/// ```
/// use hub_runtime::auth::JwtAuthenticator;
/// use hub_runtime::EndpointOptions;
/// use std::time::Duration;
///
/// let jwt = JwtAuthenticator::hs256(b"a secret of at least 32 bytes....")
///     .issuer("https://login.example.com")
///     .audience("chat")
///     .leeway(Duration::from_secs(5));
/// let endpoint = EndpointOptions::new().authenticator(jwt);
/// # let _ = endpoint;
/// ```
#[derive(Clone)]
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
    user_id_claims: Vec<String>,
    allow_anonymous: bool,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .field("leeway", &self.validation.leeway)
            .field("user_id_claims", &self.user_id_claims)
            .field("allow_anonymous", &self.allow_anonymous)
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticator {
    /// Tokens signed with HMAC-SHA256 (HS256) and this shared secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::new(DecodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// Tokens signed with RSA (RS256), checked with this public key in PEM form (`BEGIN
    /// PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// When the PEM is not an RSA public key.
    pub fn rs256_pem(public_key_pem: impl AsRef<[u8]>) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self::new(
            DecodingKey::from_rsa_pem(public_key_pem.as_ref())?,
            Algorithm::RS256,
        ))
    }

    /// Tokens signed with `algorithm`, checked with `key` (any key and algorithm the
    /// re-exported [`jsonwebtoken`] crate supports).
    pub fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        // Checked only when an audience is named (see `audience`).
        validation.validate_aud = false;
        // A token used before its `nbf` is refused (with the same leeway as `exp`); a token
        // without `nbf` is valid from the start.
        validation.validate_nbf = true;
        JwtAuthenticator {
            key,
            validation,
            user_id_claims: vec!["nameid".into(), claim_types::NAME_IDENTIFIER.into(), "sub".into()],
            allow_anonymous: false,
        }
    }

    /// Accepts only tokens whose `iss` is this issuer (call again to accept several); a token
    /// without `iss` is then refused.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.validation
            .iss
            .get_or_insert_with(Default::default)
            .insert(issuer.into());
        self.validation.required_spec_claims.insert("iss".into());
        self
    }

    /// Accepts only tokens whose `aud` names this audience (call again to accept several); a
    /// token without `aud` is then refused. Without it, `aud` is not checked.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.validation
            .aud
            .get_or_insert_with(Default::default)
            .insert(audience.into());
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".into());
        self
    }

    /// How far past its `exp` (or before its `nbf`) a token is still taken, for clocks that
    /// disagree (60 s by default; whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Takes the user id from this claim (instead of `nameid`, then its long name, then
    /// `sub`). A token without it authenticates an identity without a user id.
    pub fn user_id_claim(mut self, kind: impl Into<String>) -> Self {
        self.user_id_claims = vec![kind.into()];
        self
    }

    /// Admits requests that carry no token at all, without an identity (a token that fails a
    /// check is still refused). `#[hub(authorize)]` then decides what they may call.
    pub fn allow_anonymous(mut self) -> Self {
        self.allow_anonymous = true;
        self
    }

    /// Validates one token and returns its identity.
    ///
    /// # Errors
    /// When the signature, the algorithm, the expiry, the `nbf`, the issuer or the audience is
    /// wrong, or the token is not a JWT whose claims are a JSON object.
    pub fn validate(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::new(format!("invalid bearer token: {e}")))?;
        let mut claims = Vec::with_capacity(data.claims.len());
        for (kind, value) in data.claims {
            push_claims(&mut claims, &kind, value);
        }
        let user_id = self
            .user_id_claims
            .iter()
            .find_map(|wanted| claims.iter().find(|(k, _)| k == wanted))
            .map(|(_, v)| v.clone());
        Ok(Identity { user_id, claims })
    }
}

/// One claim per value: arrays are spread, strings taken as they are, other values as JSON.
fn push_claims(claims: &mut Vec<(String, String)>, kind: &str, value: Value) {
    match value {
        Value::Null => {}
        Value::String(s) => claims.push((kind.to_string(), s)),
        Value::Array(items) => {
            for item in items {
                if !item.is_array() {
                    push_claims(claims, kind, item);
                }
            }
        }
        other => claims.push((kind.to_string(), other.to_string())),
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, request: &RequestContext) -> BoxFuture<'static, Result<Option<Identity>, AuthError>> {
        let result = match request.bearer_token().filter(|t| !t.is_empty()) {
            Some(token) => self.validate(token).map(Some),
            None if self.allow_anonymous => Ok(None),
            None => Err(AuthError::new("no bearer token")),
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, get_current_timestamp, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const RSA_PRIVATE: &str = include_str!("testdata/rsa_private.pem");
    const RSA_PUBLIC: &str = include_str!("testdata/rsa_public.pem");
    const OTHER_RSA_PUBLIC: &str = include_str!("testdata/other_rsa_public.pem");

    fn now() -> u64 {
        get_current_timestamp()
    }

    fn hs256(claims: &Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn rs256(claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    fn refused(result: Result<Identity, AuthError>) -> String {
        match result {
            Ok(identity) => panic!("the token was accepted: {identity:?}"),
            Err(e) => e.reason,
        }
    }

    fn authenticate(
        auth: &JwtAuthenticator,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Option<Identity>, AuthError> {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let request = RequestContext::new(query, map, None);
        // The future is ready at once: no runtime needed.
        let mut future = auth.authenticate(&request);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => panic!("the JWT authenticator does not wait"),
        }
    }

    #[test]
    fn a_valid_hs256_token_gives_its_claims_and_the_nameid_as_user_id() {
        let token = hs256(
            &json!({"nameid": "testuser", "sub": "subject", "role": ["admin", "editor"], "level": 3, "exp": now() + 60}),
            SECRET,
        );
        let identity = JwtAuthenticator::hs256(SECRET).validate(&token).unwrap();
        assert_eq!(identity.user_id(), Some("testuser"));
        assert_eq!(identity.claim("sub"), Some("subject"));
        assert_eq!(identity.claim_values("role").collect::<Vec<_>>(), ["admin", "editor"]);
        assert!(identity.is_in_role("editor"));
        assert_eq!(identity.claim("level"), Some("3"));
        assert!(identity.claim("exp").is_some());
    }

    #[test]
    fn the_user_id_falls_back_to_the_long_name_then_sub_and_can_be_chosen() {
        let long = hs256(
            &json!({claim_types::NAME_IDENTIFIER: "long", "sub": "s", "exp": now() + 60}),
            SECRET,
        );
        let sub = hs256(&json!({"sub": "s", "email": "e@x", "exp": now() + 60}), SECRET);
        let auth = JwtAuthenticator::hs256(SECRET);
        assert_eq!(auth.validate(&long).unwrap().user_id(), Some("long"));
        assert_eq!(auth.validate(&sub).unwrap().user_id(), Some("s"));
        let by_email = auth.clone().user_id_claim("email");
        assert_eq!(by_email.validate(&sub).unwrap().user_id(), Some("e@x"));
        assert_eq!(by_email.validate(&long).unwrap().user_id(), None);
    }

    #[test]
    fn expired_tokens_are_refused_beyond_the_leeway() {
        let auth = JwtAuthenticator::hs256(SECRET).leeway(Duration::ZERO);
        let expired = hs256(&json!({"nameid": "u", "exp": now() - 10}), SECRET);
        assert!(refused(auth.validate(&expired)).contains("ExpiredSignature"));
        // The default leeway (60 s) still takes a token expired 10 s ago.
        assert!(JwtAuthenticator::hs256(SECRET).validate(&expired).is_ok());
        let long_expired = hs256(&json!({"nameid": "u", "exp": now() - 120}), SECRET);
        refused(JwtAuthenticator::hs256(SECRET).validate(&long_expired));
        let no_exp = hs256(&json!({"nameid": "u"}), SECRET);
        assert!(refused(auth.validate(&no_exp)).contains("exp"));
    }

    #[test]
    fn tokens_not_yet_valid_are_refused_beyond_the_leeway() {
        let auth = JwtAuthenticator::hs256(SECRET).leeway(Duration::ZERO);
        let future = hs256(&json!({"nameid": "u", "nbf": now() + 600, "exp": now() + 3600}), SECRET);
        assert!(refused(auth.validate(&future)).contains("ImmatureSignature"));
        refused(JwtAuthenticator::hs256(SECRET).validate(&future));
        // The same leeway as for `exp`: 60 s by default takes a token valid 10 s from now.
        let soon = hs256(&json!({"nameid": "u", "nbf": now() + 10, "exp": now() + 3600}), SECRET);
        assert!(JwtAuthenticator::hs256(SECRET).validate(&soon).is_ok());
        assert!(refused(auth.validate(&soon)).contains("ImmatureSignature"));
        let past = hs256(&json!({"nameid": "u", "nbf": now() - 10, "exp": now() + 3600}), SECRET);
        assert!(auth.validate(&past).is_ok());
        // `nbf` is optional; a malformed one is refused.
        let malformed = hs256(&json!({"nameid": "u", "nbf": "soon", "exp": now() + 3600}), SECRET);
        refused(auth.validate(&malformed));
    }

    #[test]
    fn a_wrong_key_or_algorithm_or_garbage_is_refused() {
        let claims = json!({"nameid": "u", "exp": now() + 60});
        let auth = JwtAuthenticator::hs256(SECRET);
        refused(auth.validate(&hs256(&claims, b"another secret of 32 bytes......")));
        refused(auth.validate(&rs256(&claims)));
        refused(auth.validate("not.a.token"));
        refused(auth.validate(""));
        // A token whose signature was cut off.
        let token = hs256(&claims, SECRET);
        refused(auth.validate(token.rsplit_once('.').unwrap().0));
    }

    #[test]
    fn issuer_and_audience_are_checked_when_named() {
        let token = |claims: Value| hs256(&claims, SECRET);
        let good = token(json!({"nameid": "u", "iss": "issuer", "aud": "hub", "exp": now() + 60}));
        let wrong_iss = token(json!({"nameid": "u", "iss": "other", "aud": "hub", "exp": now() + 60}));
        let wrong_aud = token(json!({"nameid": "u", "iss": "issuer", "aud": ["x", "y"], "exp": now() + 60}));
        let neither = token(json!({"nameid": "u", "exp": now() + 60}));

        let open = JwtAuthenticator::hs256(SECRET);
        for t in [&good, &wrong_iss, &wrong_aud, &neither] {
            assert!(
                open.validate(t).is_ok(),
                "without issuer or audience named, neither is checked"
            );
        }
        let strict = JwtAuthenticator::hs256(SECRET).issuer("issuer").audience("hub");
        assert_eq!(strict.validate(&good).unwrap().user_id(), Some("u"));
        assert!(refused(strict.validate(&wrong_iss)).contains("InvalidIssuer"));
        assert!(refused(strict.validate(&wrong_aud)).contains("InvalidAudience"));
        refused(strict.validate(&neither));
        let two = JwtAuthenticator::hs256(SECRET)
            .issuer("other")
            .issuer("issuer")
            .audience("y");
        assert!(two.validate(&wrong_iss).is_err(), "audience hub is not y");
        assert!(two
            .validate(&token(json!({"iss": "other", "aud": "y", "exp": now() + 60})))
            .is_ok());
    }

    #[test]
    fn rs256_with_a_public_key() {
        let auth = JwtAuthenticator::rs256_pem(RSA_PUBLIC).unwrap();
        let token = rs256(&json!({"sub": "rsa-user", "exp": now() + 60}));
        assert_eq!(auth.validate(&token).unwrap().user_id(), Some("rsa-user"));
        let other = JwtAuthenticator::rs256_pem(OTHER_RSA_PUBLIC).unwrap();
        refused(other.validate(&token));
        // An HS256 token signed with the public key's text must not pass (algorithm confusion).
        let forged = hs256(&json!({"sub": "rsa-user", "exp": now() + 60}), RSA_PUBLIC.as_bytes());
        refused(auth.validate(&forged));
        assert!(JwtAuthenticator::rs256_pem("not a key").is_err());
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let token = hs256(&json!({"nameid": "u", "exp": now() + 60}), SECRET);
        let auth = JwtAuthenticator::hs256(SECRET);
        let bearer = format!("Bearer {token}");
        let by_header = authenticate(&auth, "", &[("authorization", &bearer)]).unwrap();
        assert_eq!(by_header.unwrap().user_id(), Some("u"));
        let by_query = authenticate(&auth, &format!("id=x&access_token={token}"), &[]).unwrap();
        assert_eq!(by_query.unwrap().user_id(), Some("u"));
        assert!(authenticate(&auth, "", &[]).is_err(), "no token: refused");
        assert!(
            authenticate(&auth, "access_token=", &[]).is_err(),
            "an empty token: refused"
        );
        assert!(authenticate(&auth, "access_token=garbage", &[]).is_err());

        let open = auth.allow_anonymous();
        assert_eq!(authenticate(&open, "", &[]).unwrap(), None, "no token: anonymous");
        assert!(
            authenticate(&open, "access_token=garbage", &[]).is_err(),
            "a bad token: still refused"
        );
    }
}
