//! The `ferrokafka` binary over SASL_SSL (the scramp-based SASL server behind
//! stunnel): librdkafka's `-X sasl.*` keys, Java's in a `-F` properties file, and the
//! exit code and message of wrong credentials. CI reruns it with the static binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use ferrokafka_tests::sasl_frontend::SaslFrontend;
use ferrokafka_tests::stunnel::testgen::{KeyType, Pki};
use ferrokafka_tests::stunnel::{Stunnel, TlsOptions};

fn ferrokafka(args: &[String]) -> Output {
    ferrokafka_tests::run_cli(env!("CARGO_BIN_EXE_ferrokafka"), args, b"")
}

#[test]
fn cli_lists_metadata_over_sasl_ssl_and_refuses_a_wrong_password() {
    Pki::remove_stale("cli-sasl");
    let pki = Pki::new("cli-sasl").unwrap();
    let server = pki.leaf("server", KeyType::Rsa, "IP:127.0.0.1,DNS:localhost").unwrap();
    let fe = SaslFrontend::start(&[("alice", "cli-secret-5")], &["PLAIN", "SCRAM-SHA-512"], 0);
    let fe_port: u16 = fe.addr().rsplit(':').next().unwrap().parse().unwrap();
    let opts = TlsOptions { cert: server.chain.clone(), key: server.key.clone(), ..Default::default() };
    let tls = Stunnel::try_start(&opts, ferrokafka_tests::free_port(), fe_port).unwrap();
    let ca = pki.ca_cert.display().to_string();
    let x = |kv: &str| ["-X".to_owned(), kv.to_owned()];
    let mut args: Vec<String> = vec!["-L".into(), "-b".into(), tls.addr().into()];
    for kv in [
        "security.protocol=SASL_SSL",
        "sasl.mechanisms=SCRAM-SHA-512",
        "sasl.username=alice",
        "sasl.password=cli-secret-5",
        &format!("ssl.ca.location={ca}"),
    ] {
        args.extend(x(kv));
    }
    let out = ferrokafka(&args);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), fe.output());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 brokers"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(fe.wait_count("authenticated alice SCRAM-SHA-512", 1) >= 1, "{}", fe.output());

    // Java's keys in a properties file (-F), PLAIN.
    let props = std::env::temp_dir().join(ferrokafka_tests::unique_topic("cli-sasl") + ".properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nssl.truststore.location={ca}\nssl.truststore.type=PEM\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"cli-secret-5\";\n"
        ),
    )
    .unwrap();
    let f = |extra: &[&str]| {
        let mut a: Vec<String> =
            vec!["-L".into(), "-b".into(), tls.addr().into(), "-F".into(), props.display().to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        ferrokafka(&a)
    };
    let out = f(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fe.wait_count("authenticated alice PLAIN", 1) >= 1, "{}", fe.output());

    // A wrong password: exit code 1 (runtime error), the reason, never the password.
    let wrong: Vec<String> = args
        .iter()
        .map(|a| if a == "sasl.password=cli-secret-5" { "sasl.password=nope-42".into() } else { a.clone() })
        .collect();
    let out = ferrokafka(&wrong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("authentication") && stderr.contains("alice"), "{stderr}");
    assert!(!stderr.contains("nope-42") && !stderr.contains("cli-secret-5"), "{stderr}");
    let _ = std::fs::remove_file(&props);
}
