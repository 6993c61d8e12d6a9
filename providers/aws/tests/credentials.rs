//! The credential chain end to end, through the provider process: roles assumed with moto's
//! STS (AssumeRole from a profile, AssumeRoleWithWebIdentity from a token file), a
//! `credential_process`, and stand-in container, instance metadata and SSO portal endpoints on
//! 127.0.0.1 that hand out moto's keys. Every case proves itself by `configure` (STS
//! GetCallerIdentity, signed and verified by moto) and one real create/delete.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Canned, Provider, Proxy, moto};
use serde_json::json;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skyform-aws-creds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Creates and deletes a log group: the credentials sign real calls.
fn prove(p: &mut Provider, name: &str) {
    let inputs = p.check("aws:logs:LogGroup", name, json!({}), None);
    let (id, _) = p.create("aws:logs:LogGroup", name, &inputs);
    p.delete("aws:logs:LogGroup", &id, &inputs);
}

/// A role in moto that may do anything, for the assume-role cases.
fn role(name: &str) -> String {
    moto().py(&format!(
        r#"
iam = client('iam')
try:
    r = iam.get_role(RoleName='{name}')['Role']
except Exception:
    r = iam.create_role(RoleName='{name}', AssumeRolePolicyDocument=json.dumps({{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "*"}}, "Action": "sts:AssumeRole"}}]}}))['Role']
    iam.put_role_policy(RoleName='{name}', PolicyName='all', PolicyDocument=json.dumps({{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "*", "Resource": "*"}}]}}))
print(r['Arn'])
"#
    ))
}

fn time_in(secs: u64) -> String {
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(secs);
    skyform_aws::credentials::format_time(t)
}

#[test]
fn a_profile_assumes_a_role_with_its_source_profile() {
    let m = moto();
    let arn = role("skyform-deployer");
    let dir = scratch("assume");
    let creds = dir.join("credentials");
    std::fs::write(
        &creds,
        format!("[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n", m.key_id, m.secret),
    )
    .unwrap();
    let conf = dir.join("config");
    std::fs::write(
        &conf,
        format!("[profile deploy]\nrole_arn = {arn}\nsource_profile = base\nregion = us-east-1\n"),
    )
    .unwrap();
    let files = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", conf.to_str().unwrap()),
    ];
    let mut p = Provider::spawn(&files);
    p.configure(json!({"profile": "deploy", "endpoint": m.endpoint})).unwrap();
    prove(&mut p, "assumed");

    // A profile the stack names that does not exist is an error, even with good keys in the
    // environment (today's silent fallback would deploy into those keys' account).
    let mut env = files.to_vec();
    env.extend([("AWS_ACCESS_KEY_ID", m.key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", m.secret.as_str())]);
    let mut p = Provider::spawn(&env);
    let e =
        p.configure(json!({"profile": "deplyo", "endpoint": m.endpoint, "region": "us-east-1"})).unwrap_err();
    assert_eq!(e.code, "configuration");
    assert!(e.message.contains("profile `deplyo` is not in"), "{}", e.message);
    assert!(e.message.contains("base, deploy"), "{}", e.message);

    // A role STS refuses to hand out names the role and the source.
    std::fs::write(
        &conf,
        "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n",
    )
    .unwrap();
    std::fs::write(&creds, "[base]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = nope\n").unwrap();
    let mut p = Provider::spawn(&files);
    let e =
        p.configure(json!({"profile": "deploy", "endpoint": m.endpoint, "region": "us-east-1"})).unwrap_err();
    assert_eq!(e.code, "configuration");
    assert!(
        e.message.contains("AssumeRole arn:aws:iam::123456789012:role/x with profile `base`"),
        "{}",
        e.message
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_web_identity_token_file_assumes_its_role() {
    let endpoint = common::plain_moto();
    let arn = "arn:aws:iam::123456789012:role/skyform-ci";
    let dir = scratch("oidc");
    let token = dir.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2ln\n").unwrap();
    let mut p = Provider::spawn(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", arn),
        ("AWS_ROLE_SESSION_NAME", "github-actions"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &endpoint),
    ]);
    p.configure(json!({})).unwrap();
    prove(&mut p, "oidc");

    let mut p = Provider::spawn(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", dir.join("missing").to_str().unwrap()),
        ("AWS_ROLE_ARN", arn),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &endpoint),
    ]);
    let e = p.configure(json!({})).unwrap_err();
    assert!(e.message.contains("cannot read the web identity token file"), "{}", e.message);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_credential_process_prints_the_keys() {
    let m = moto();
    let dir = scratch("process");
    let script = dir.join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"{}\", \"SecretAccessKey\": \"{}\", \"Expiration\": \"{}\"}}'\n",
            m.key_id,
            m.secret,
            time_in(3600)
        ),
    )
    .unwrap();
    let conf = dir.join("config");
    std::fs::write(
        &conf,
        format!("[default]\ncredential_process = sh {}\nregion = us-east-1\n", script.display()),
    )
    .unwrap();
    let mut p =
        Provider::spawn(&[("AWS_CONFIG_FILE", conf.to_str().unwrap()), ("AWS_ENDPOINT_URL", &m.endpoint)]);
    p.configure(json!({})).unwrap();
    prove(&mut p, "process");

    std::fs::write(&conf, "[default]\ncredential_process = sh -c 'exit 3'\nregion = us-east-1\n").unwrap();
    let mut p =
        Provider::spawn(&[("AWS_CONFIG_FILE", conf.to_str().unwrap()), ("AWS_ENDPOINT_URL", &m.endpoint)]);
    let e = p.configure(json!({})).unwrap_err();
    assert!(e.message.contains("credential_process of profile `default` failed"), "{}", e.message);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A stand-in credentials endpoint: answers every request with `answer(head)`, counting them.
fn stand_in(answer: impl Fn(&str) -> Canned + Send + Sync + 'static) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let proxy = Proxy::start(
        "127.0.0.1:9",
        move |_, head| {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(answer(head))
        },
        |_, b| b,
    );
    (proxy.endpoint, hits)
}

#[test]
fn container_credentials_are_cached_and_refreshed_before_expiry() {
    let m = moto();
    for (lifetime, expect_fetches) in [(3600u64, 1usize), (120, 3)] {
        let body = json!({"AccessKeyId": m.key_id, "SecretAccessKey": m.secret, "Token": null, "Expiration": time_in(lifetime)})
            .to_string();
        let (endpoint, hits) = stand_in(move |head| {
            if head.to_ascii_lowercase().contains("authorization: s3cr3t") {
                (200, vec![("content-type", "application/json")], body.clone())
            } else {
                (401, vec![], "no token".into())
            }
        });
        let url = format!("{endpoint}/v2/credentials/abc");
        let mut p = Provider::spawn(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "s3cr3t"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &m.endpoint),
        ]);
        p.configure(json!({})).unwrap();
        prove(&mut p, &format!("container-{lifetime}"));
        // configure, create (CreateLogGroup, then reads), delete: several signed calls.
        let fetched = hits.load(Ordering::SeqCst);
        if expect_fetches == 1 {
            assert_eq!(fetched, 1, "credentials valid for an hour are fetched once");
        } else {
            assert!(
                fetched >= expect_fetches,
                "credentials expiring within 5 minutes are fetched again: {fetched}"
            );
        }
    }
    // Without the token the endpoint refuses, and configure says so.
    let (endpoint, _) = stand_in(|_| (401, vec![], "no".into()));
    let mut p = Provider::spawn(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &format!("{endpoint}/creds")),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &m.endpoint),
    ]);
    let e = p.configure(json!({})).unwrap_err();
    assert!(
        e.message.contains("container credentials endpoint") && e.message.contains("401"),
        "{}",
        e.message
    );
}

#[test]
fn instance_metadata_with_a_session_token() {
    let m = moto();
    let body = json!({"Code": "Success", "AccessKeyId": m.key_id, "SecretAccessKey": m.secret, "Token": "", "Expiration": time_in(3600)})
        .to_string();
    let (endpoint, _) = stand_in(move |head| {
        let first = head.lines().next().unwrap_or("");
        let token = head.to_ascii_lowercase().contains("x-aws-ec2-metadata-token: tok");
        match first.split_whitespace().take(2).collect::<Vec<_>>()[..] {
            ["PUT", "/latest/api/token"] => (200, vec![], "tok".into()),
            ["GET", "/latest/meta-data/iam/security-credentials/"] if token => {
                (200, vec![], "web-role".into())
            }
            ["GET", "/latest/meta-data/iam/security-credentials/web-role"] if token => {
                (200, vec![], body.clone())
            }
            _ => (401, vec![], String::new()),
        }
    });
    let mut p = Provider::spawn(&[
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &m.endpoint),
    ]);
    p.configure(json!({})).unwrap();
    prove(&mut p, "imds");
}

#[test]
fn sso_trades_the_cached_token_for_role_credentials() {
    let m = moto();
    let expiration_ms = (std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let body = json!({"roleCredentials": {"accessKeyId": m.key_id, "secretAccessKey": m.secret, "sessionToken": null, "expiration": expiration_ms as u64}})
        .to_string();
    let (portal, _) = stand_in(move |head| {
        let first = head.lines().next().unwrap_or("");
        let good = head.to_ascii_lowercase().contains("x-amz-sso_bearer_token: cached-token");
        if good && first.contains("/federation/credentials?account_id=123456789012&role_name=Deployer") {
            (200, vec![("content-type", "application/json")], body.clone())
        } else {
            (401, vec![], "{}".into())
        }
    });
    let dir = scratch("sso");
    let conf = dir.join("config");
    std::fs::write(
        &conf,
        "[profile team]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Deployer\nregion = us-east-1\n\
         [sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.awsapps.com/start\n",
    )
    .unwrap();
    let home = dir.join("home");
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let env = [
        ("AWS_CONFIG_FILE", conf.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_SSO", portal.as_str()),
        ("HOME", home.to_str().unwrap()),
    ];
    // No token cached yet: the error says to log in.
    let mut p = Provider::spawn(&env);
    let e = p.configure(json!({"profile": "team", "endpoint": m.endpoint})).unwrap_err();
    assert!(e.message.contains("aws sso login --profile team"), "{}", e.message);

    // The file `aws sso login` writes: named by the SHA-1 of the session name.
    std::fs::write(
        cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
        json!({"accessToken": "cached-token", "expiresAt": time_in(3600), "region": "us-east-1"}).to_string(),
    )
    .unwrap();
    let mut p = Provider::spawn(&env);
    p.configure(json!({"profile": "team", "endpoint": m.endpoint})).unwrap();
    prove(&mut p, "sso");
    std::fs::remove_dir_all(dir).unwrap();
}
