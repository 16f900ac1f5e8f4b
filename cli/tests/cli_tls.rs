//! The `ferrokafka` binary over mutual TLS (tansu behind stunnel): the Java keys
//! given with `-X` and in a `-F` properties file, and the exit code of a bad store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use ferrokafka_tests::raw::RawConnection;
use ferrokafka_tests::stunnel::testgen::{KeyType, Pki, KEY_PASSWORD, STORE_PASSWORD};
use ferrokafka_tests::stunnel::{TlsBroker, TlsOptions};
use ferrokafka_tests::unique_topic;

fn ferrokafka(args: &[String], stdin: &[u8]) -> Output {
    ferrokafka_tests::run_cli(env!("CARGO_BIN_EXE_ferrokafka"), args, stdin)
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cli_over_mutual_tls_with_x_and_f() {
    Pki::remove_stale("cli");
    let pki = Pki::new("cli").unwrap();
    let local = "IP:127.0.0.1,DNS:localhost";
    let server = pki.leaf("server", KeyType::Ec, local).unwrap();
    let keystore = pki.keytool_keystore("client", KeyType::Rsa, "JKS", KEY_PASSWORD, local).unwrap();
    let truststore = pki.truststore("PKCS12", "trust.p12").unwrap();
    let b = TlsBroker::start(&TlsOptions {
        cert: server.chain.clone(),
        key: server.key.clone(),
        client_ca: Some(pki.ca_cert.clone()),
        max_version: None,
    });
    let topic = unique_topic("cli-tls");
    RawConnection::connect(b.tansu.addr()).unwrap().create_topic(&topic, 1).unwrap();
    let keys = [
        ("security.protocol", "SSL".to_owned()),
        ("ssl.truststore.location", truststore.display().to_string()),
        ("ssl.truststore.password", STORE_PASSWORD.to_owned()),
        ("ssl.truststore.type", "PKCS12".to_owned()),
        ("ssl.keystore.location", keystore.display().to_string()),
        ("ssl.keystore.password", STORE_PASSWORD.to_owned()),
        ("ssl.key.password", KEY_PASSWORD.to_owned()),
    ];
    let mut x: Vec<String> = Vec::new();
    for (k, v) in &keys {
        x.extend(["-X".to_owned(), format!("{k}={v}")]);
    }
    let props = pki.path("client.properties");
    std::fs::write(&props, keys.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>()).unwrap();
    let f = vec!["-F".to_owned(), props.display().to_string()];

    let mut list = strings(&["-L", "-b", b.addr()]);
    list.extend(x.clone());
    assert!(ok(ferrokafka(&list, b""), "-L over TLS").contains(&topic));

    let mut produce = strings(&["-P", "-b", b.addr(), "-t", &topic, "-p", "0"]);
    produce.extend(x);
    ok(ferrokafka(&produce, b"one\ntwo\nthree\n"), "-P over TLS with -X");

    let mut consume = strings(&["-C", "-b", b.addr(), "-t", &topic, "-e", "-q"]);
    consume.extend(f.clone());
    assert_eq!(ok(ferrokafka(&consume, b""), "-C over TLS with -F"), "one\ntwo\nthree\n");

    // A wrong key password is a configuration error (exit 3), found before connecting.
    let mut bad = strings(&["-L", "-b", b.addr()]);
    bad.extend(f);
    bad.extend(strings(&["-X", "ssl.key.password=not-the-password"]));
    let out = ferrokafka(&bad, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("wrong key password") && !err.contains("not-the-password"), "{err}");
}
